"""srctype: the official decision rules."""

import pytest
from astropy.io import fits

from webbspec.io.datamodels import Model, Slit
from webbspec.errors import InputError
from webbspec.steps import srctype


def _fs(**primary):
    p = fits.Header()
    keys = dict(EXP_TYPE="NRS_FIXEDSLIT", FXD_SLIT="S200A1", SRCTYAPT="POINT", PATTTYPE="3-POINT-NOD", NINTS=1)
    keys.update(primary)
    for k, v in keys.items():
        if v is not None:
            p[k] = v
    slits = []
    for name in ("S200A1", "S200A2", "S400A1"):
        h = fits.Header()
        h["SLTNAME"], h["SRCXPOS"], h["SRCYPOS"] = name, 0.05 if name == "S200A1" else 0.0, 0.1
        slits.append(Slit(h, {"SCI": [[0.0]]}))
    return Model(p, slits, "multi")


def _types(m):
    return [s.header["SRCTYPE"] for s in m.slits]


def test_fixed_slit_rules():
    m = _fs()
    out = srctype.run(m)
    assert _types(out) == ["POINT", "EXTENDED", "EXTENDED"] and out.primary["S_SRCTYP"] == "COMPLETE"
    assert "SRCTYPE" not in m.slits[0].header                       # input untouched
    ext = srctype.run(_fs(BKGDTARG=True))
    assert _types(ext) == ["EXTENDED"] * 3 and ext.slits[0].header["SRCXPOS"] == 0.0
    assert _types(srctype.run(_fs(SRCTYAPT="EXTENDED"))) == ["EXTENDED"] * 3
    assert _types(srctype.run(_fs(SRCTYAPT="EXTENDED"), source_type="POINT"))[0] == "POINT"
    assert _types(srctype.run(_fs(SRCTYAPT=None, PATTTYPE="NONE")))[0] == "POINT"      # default POINT
    assert _types(srctype.run(_fs(SRCTYAPT="UNKNOWN", PATTTYPE="2-POINT-NOD")))[0] == "POINT"
    assert _types(srctype.run(_fs(SRCTYAPT="EXTENDED", TSOVISIT=True)))[0] == "POINT"
    with pytest.raises(InputError, match="source_type"):
        srctype.run(_fs(), source_type="DIFFUSE")


def test_other_modes():
    ifu = Model(fits.Header({"EXP_TYPE": "NRS_IFU"}), [Slit(fits.Header(), {"SCI": [[0.0]]})])
    out = srctype.run(ifu)
    assert out.primary["SRCTYPE"] == "EXTENDED"                      # IFU default
    ifu.primary["PATTTYPE"] = "2-POINT-NOD"
    assert srctype.run(ifu).primary["SRCTYPE"] == "POINT"
    mos = Model(fits.Header({"EXP_TYPE": "NRS_MSASPEC", "SRCTYPE": "POINT"}),
                [Slit(fits.Header({"STLARITY": s}), {"SCI": [[0.0]]}) for s in (-1.0, 0.5, 0.9)], "multi")
    out = srctype.run(mos)
    assert _types(out) == ["POINT", "EXTENDED", "POINT"] and "SRCTYPE" not in out.primary
