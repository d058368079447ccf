"""NIRSpec: the optical model from the official reference files (``optics``) and what is specific
to fixed slits (``fs``)."""
