"""freeze_fits_config: the job processes' astropy FITS settings, frozen at their values."""

import subprocess
import sys

CODE = r"""
import io, numpy as np
from astropy.io import fits
from astropy.config import ConfigItem

def roundtrip():
    h = fits.Header()
    h["A"] = (1.5, "a float")
    h["DP1"] = "AXIS.1: 1"                      # a record-valued keyword card
    h["S"] = ("text  ", "trailing blanks")
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(header=h), fits.ImageHDU(np.arange(6.0).reshape(2, 3), name="SCI")]).writeto(buf)
    buf.seek(0)
    with fits.open(buf) as hl:
        return hl[0].header.tostring(), hl["SCI"].data.tolist(), hl[0].header["DP1.AXIS.1"], hl[0].header["S"]

before = roundtrip()
values = {k: getattr(fits.conf, k) for k, v in vars(type(fits.conf)).items() if isinstance(v, ConfigItem)}
from webbspec.io.fitsconf import freeze_fits_config
freeze_fits_config()
assert not any(isinstance(v, ConfigItem) for v in vars(type(fits.conf)).values())
assert {k: getattr(fits.conf, k) for k in values} == values
assert roundtrip() == before, "same headers and data after the freeze"
print("ok", sorted(values))
"""


def test_freeze_keeps_the_values_and_what_astropy_reads():
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "enable_record_valued_keyword_cards" in r.stdout and "strip_header_whitespace" in r.stdout
