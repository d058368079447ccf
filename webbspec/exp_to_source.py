"""exp_to_source: split ONE Stage 2 exposure into one small file per source.

Input: an official `_cal` (the gwcs is evaluated once, by :mod:`webbspec.realdata`) or our own
Stage 2 `_cal` (which already carries WAVELENGTH/XI/ETA). Output: ``outdir/<source_key>.fits``
per source (a ``layout="single"`` Model: the slit arrays incl. WAVELENGTH/XI/ETA; the slit header
holds the slit keywords merged with the exposure's PRIMARY keywords, as the official
exp_to_source merges exposure metadata into each slit) and ``outdir/sources.tsv``.

Source key as official: SRCNAME if non-empty, else str(SOURCEID). Stage 3 id string
``s{SOURCEID:09d}``; NRS_MSASPEC background slits ("BKG" in the slit name) ``b...``, virtual
slits (SOURCEID < 0) ``v...`` with the sign dropped. Every slit of a source is re-referenced to
the source's SRCRA/SRCDEC (WSREFRA/WSREFDE), so all exposures of the source share the reference;
without a finite source position the slit centre is kept (Stage 3 then aligns the exposures to
the first one's reference).
"""

import logging
import os
import re
import warnings

import numpy as np
from astropy.io.fits.verify import VerifyWarning

from . import datamodels, realdata
from .datamodels import Model, Slit
from .errors import InputError
from .skycoords import radec_to_xieta, xieta_to_radec

__all__ = ["split_exposure", "source_key", "source_id_string", "rereference", "slice_filename",
           "TSV_HEADER"]

log = logging.getLogger(__name__)

TSV_HEADER = ("source_key", "path", "source_id")
# PRIMARY keywords not copied into the slit headers (structure, file identity)
_NO_MERGE = {"SIMPLE", "BITPIX", "NAXIS", "EXTEND", "FILENAME", "DATAMODL", "COMMENT", "HISTORY", ""}


def source_key(header):
    """SRCNAME if non-empty, else str(SOURCEID) (official grouping key)."""
    name = str(header.get("SRCNAME", "") or "").strip()
    if name:
        return name
    return str(int(header["SOURCEID"]))


def source_id_string(header, exp_type=""):
    """The Stage 3 id ``s000000933`` (``b``/``v`` for MOS background/virtual slits)."""
    sid = int(header["SOURCEID"])
    prefix = "s"
    if str(exp_type).upper() == "NRS_MSASPEC":
        if "BKG" in str(header.get("SLTNAME", "")).upper():
            prefix = "b"
        elif sid < 0:
            prefix = "v"
    return f"{prefix}{abs(sid):09d}"


def slice_filename(key):
    """A file name for a source key (characters unsafe in paths replaced by '_')."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", key) + ".fits"


def rereference(slit, ra0, dec0):
    """Re-express the slit's XI/ETA around (ra0, dec0) [deg] in place (float64 math)."""
    old = (float(slit.header["WSREFRA"]), float(slit.header["WSREFDE"]))
    if np.allclose(old, (ra0, dec0), rtol=0, atol=1e-12):
        return slit
    ra, dec = xieta_to_radec(np.asarray(slit["XI"], float), np.asarray(slit["ETA"], float), *old)
    xi, eta = radec_to_xieta(ra, dec, ra0, dec0)
    slit["XI"], slit["ETA"] = xi.astype(np.float32), eta.astype(np.float32)
    slit.header["WSREFRA"] = (float(ra0), "[deg] RA of the XI/ETA reference")
    slit.header["WSREFDE"] = (float(dec0), "[deg] Dec of the XI/ETA reference")
    return slit


def _source_position(header):
    try:
        ra, dec = float(header.get("SRCRA")), float(header.get("SRCDEC"))
    except (TypeError, ValueError):
        return None
    return (ra, dec) if np.isfinite(ra) and np.isfinite(dec) else None


def _load(cal):
    if isinstance(cal, Model):
        return cal, str(cal.path or "<model>")
    return realdata.read_stage2(str(cal)), str(cal)


def split_exposure(cal_path_or_model, outdir):
    """Write one file per source of one exposure; returns ``[(source_key, path)]``."""
    model, where = _load(cal_path_or_model)
    exp_type = model.exp_type
    sources = {}
    for k, slit in enumerate(model.slits, start=1):
        name = f"{where}[slit {slit.name or k}]"
        if str(slit.header.get("SOURCEID", "")).strip() == "":
            raise InputError(name, "slit has no SOURCEID")
        missing = [a for a in ("SCI", "WAVELENGTH", "XI", "ETA") if a not in slit]
        if missing or "WSREFRA" not in slit.header:
            raise InputError(name, f"no per-pixel coordinates ({', '.join(missing) or 'WSREFRA'})")
        sources.setdefault(source_key(slit.header), []).append(slit)

    os.makedirs(outdir, exist_ok=True)
    exposure = os.path.basename(where).split(".fits")[0]
    out = []
    for key, slits in sources.items():
        sid = source_id_string(slits[0].header, exp_type)
        new = [_merge(s, model.primary) for s in slits]
        pos = _source_position(new[0].header)
        ref = pos or (float(new[0].header["WSREFRA"]), float(new[0].header["WSREFDE"]))
        for s in new:
            rereference(s, *ref)
        primary = model.primary.copy()
        primary["DATAMODL"] = "SlitModel" if len(new) == 1 else "MultiSlitModel"
        primary["WSSRCKEY"] = key                # source key (SRCNAME or SOURCEID)
        primary["WSSRCID"] = (sid, "Stage 3 source id")
        primary["WSEXPOS"] = exposure            # exposure this slice comes from
        slice_model = Model(primary, new, "single" if len(new) == 1 else "multi")
        path = os.path.join(outdir, slice_filename(key))
        datamodels.write(slice_model, path)
        out.append((key, path))
    _write_tsv(os.path.join(outdir, "sources.tsv"), [(k, os.path.basename(p), source_id_string(
        sources[k][0].header, exp_type)) for k, p in out])
    log.info("%s: %d slits -> %d sources", where, len(model.slits), len(out))
    return out


def _merge(slit, primary):
    """A copy of ``slit`` whose header also holds the exposure keywords (slit values win)."""
    new = Slit(slit.header.copy(), dict(slit.arrays))
    with warnings.catch_warnings():   # long comments are truncated: harmless
        warnings.simplefilter("ignore", VerifyWarning)
        for card in primary.cards:
            if card.keyword not in _NO_MERGE and card.keyword not in new.header:
                # comments of long values are dropped so the card fits in 80 characters
                short = len(str(card.value)) + len(card.comment) < 44
                new.header[card.keyword] = (card.value, card.comment if short else "")
    return new


def _write_tsv(path, rows):
    tmp = datamodels.atomic_path(path)
    try:
        with open(tmp, "w") as f:
            f.write("\t".join(TSV_HEADER) + "\n")
            for row in rows:
                f.write("\t".join(str(x) for x in row) + "\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
