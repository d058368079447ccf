"""Tiny fabricated program directories for workflow tests (headers only, no science)."""

import json
import os

import numpy as np
from astropy.io import fits

FS = {"TELESCOP": "JWST", "INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT", "DETECTOR": "NRS1",
      "FILTER": "F290LP", "GRATING": "G395M", "FXD_SLIT": "S200A1", "PROGRAM": "01234"}


def exposure_name(i, detector="nrs1"):
    return f"jw01234001001_03101_{i:05d}_{detector}"


def write_fits(path, **keys):
    hdr = fits.Header()
    for k, v in {**FS, **keys}.items():
        hdr[k] = v
    sci = fits.ImageHDU(np.zeros((4, 4), np.float32), name="SCI")
    fits.HDUList([fits.PrimaryHDU(header=hdr), sci]).writeto(path, overwrite=True)
    return path


def write_asn(path, asn_type, products):
    tree = {"asn_type": asn_type, "asn_rule": "test", "asn_id": "o001", "program": "01234",
            "asn_pool": "none",
            "products": [{"name": n, "members": [{"expname": e, "exptype": t} for e, t in m]}
                         for n, m in products]}
    with open(path, "w") as f:
        json.dump(tree, f)
    return path


SPEC3_NAME = "jw01234-o001_t001-{source_id}_nirspec_f290lp-g395m-s200a1"


def make_program(root, nexp=3, suffix="rate", spec2_asn=True, spec3_asn=True, **keys):
    """``nexp`` nodded FS exposures; spec2 asns use the other nods as backgrounds."""
    os.makedirs(root, exist_ok=True)
    names = [exposure_name(i + 1) for i in range(nexp)]
    for n in names:
        write_fits(os.path.join(root, f"{n}_{suffix}.fits"), **keys)
    if spec2_asn and suffix == "rate":
        for n in names:
            members = [(f"{n}_rate.fits", "science")] + [(f"{o}_rate.fits", "background")
                                                          for o in names if o != n]
            write_asn(os.path.join(root, f"{n}_spec2_asn.json"), "spec2", [(n, members)])
    if spec3_asn:
        write_asn(os.path.join(root, "jw01234-o001_spec3_00001_asn.json"), "spec3",
                  [(SPEC3_NAME, [(f"{n}_cal.fits", "science") for n in names])])
    return names


def fake_sources(root, product_key, exposures, nsources):
    """Pretend exp_to_source ran (one job per exposure: the files are small): its source table
    and an empty slice file per source."""
    for e in exposures:
        d = os.path.join(root, "webbspec", "spec3", product_key, "exp_to_source", e)
        os.makedirs(d, exist_ok=True)
        lines = ["source\tpath"]
        for s in range(nsources):
            key = f"s{s:09d}"
            open(os.path.join(d, f"{key}.fits"), "w").close()
            lines.append(f"{key}\t{key}.fits")
        with open(os.path.join(d, "sources.0-1.tsv"), "w") as f:
            f.write("\n".join(lines) + "\n")
