"""Our MSA metadata reader against the official one (jwst ``get_open_msa_slits``) on the MSA files
shipped in jwst's assign_wcs test data and on the MOS recipe's, and our writer's files read by
the official reader: the same slitlets, names, shutters, source ids, names and positions."""

import os

import numpy as np
import pytest
from astropy.io import fits

from webbspec.errors import InputError
from webbspec.instruments.nirspec import msa
from webbspec.instruments.nirspec.msa import Slitlet

from nrs_mos_recipe import MSA_NAME, run

pytestmark = pytest.mark.official

jwst = pytest.importorskip("jwst")
DATA = os.path.join(os.path.dirname(jwst.__file__), "assign_wcs", "tests", "data")
PROGRAM = "01234"          # the exposure's PROGRAM: names background and virtual sources


def _official(path, mid, dither, y_range):
    from jwst.assign_wcs.nirspec import get_open_msa_slits

    slits = get_open_msa_slits(PROGRAM.lstrip("0"), path, mid, dither, slit_y_range=y_range)
    return [s for s in slits if s.quadrant != 5]          # fixed slits: ours skips them


def _assert_same(theirs, ours, y_range):
    assert [s.name for s in theirs] == [s.slitlet_id for s in ours]
    for t, o in zip(theirs, ours):
        ymin, ymax = o.slit_y_limits(y_range)
        got = (o.slitlet_id, o.shutter_id, o.dither_position, o.xcen, o.ycen, o.quadrant, o.source_id,
               o.shutter_state, o.source_name, o.source_alias, o.stellarity, o.source_ra, o.source_dec)
        want = (t.name, t.shutter_id, t.dither_position, t.xcen, t.ycen, t.quadrant, t.source_id,
                t.shutter_state, t.source_name, t.source_alias, t.stellarity, t.source_ra, t.source_dec)
        assert got == want, t.name
        assert np.allclose([ymin, ymax, o.source_xpos, o.source_ypos],
                           [t.ymin, t.ymax, t.source_xpos, t.source_ypos], rtol=0, atol=1e-7), t.name


def _configurations(path):
    d = fits.getdata(path, "SHUTTER_INFO")
    return sorted({(int(m), int(p)) for m, p in zip(d["msa_metadata_id"], d["dither_point_index"])})


def _compare_file(path, y_range=(-0.55, 0.55)):
    """Every configuration and dither point of ``path``: the same slitlets, or both refuse it."""
    agreed, refused = 0, 0
    for mid, dither in _configurations(path):
        try:
            theirs = _official(path, mid, dither, y_range)
        except Exception as exc:          # the official reader's MSAFileError
            with pytest.raises(InputError) as err:
                msa.read_slitlets(path, mid, dither, PROGRAM)
            assert str(err.value).startswith(path), (mid, exc)
            refused += 1
            continue
        _assert_same(theirs, msa.read_slitlets(path, mid, dither, PROGRAM), y_range)
        agreed += 1
    return agreed, refused


@pytest.mark.parametrize("name, want", [("msa_configuration.fits", (13, 1)), ("msa_fs_configuration.fits", (13, 1))])
def test_jwst_test_files_give_the_official_slitlets(name, want):
    # configuration 13 has a slitlet with three primary shutters: the official reader refuses the
    # exposure, ours drops that slitlet, which leaves none (an InputError naming the file)
    assert _compare_file(os.path.join(DATA, name)) == want
    assert _compare_file(os.path.join(DATA, name), (-0.5, 0.5)) == want


def test_the_shutter_status_file_is_not_msa_metadata():
    path = os.path.join(DATA, "SPCB-GD-A.msa.fits.gz")
    with pytest.raises(KeyError, match="SHUTTER_INFO"):         # the official reader fails uncaught
        _official(path, 1, 1, (-0.55, 0.55))
    with pytest.raises(InputError, match=r"not an MSA metadata file: no SHUTTER_INFO table \(extensions: Q1"):
        msa.read_slitlets(path, 1, 1, PROGRAM)


def test_recipe_msa_file_gives_the_official_slitlets(tmp_path):
    run("make_msa.py", 20, cwd=tmp_path)       # 20 slitlets x 3 dither points + a decoy configuration
    assert _compare_file(str(tmp_path / MSA_NAME)) == (4, 0)


def test_our_written_file_opens_in_the_official_reader(tmp_path):
    def slitlet(sid, quadrant, row, col, kind, dither, source_id=0, xpos=0.0, ypos=0.0):
        shutters = tuple((quadrant, row, c) for c in (col - 1, col, col + 1))
        background, virtual = kind == "background", kind == "virtual"
        sid_src = sid if background else source_id
        name = {"background": f"1234_BKG{sid}", "virtual": f"1234_VRT{sid}"}.get(kind, f"1234_{source_id}")
        alias = {"background": f"BKG{sid}", "virtual": f"VRT{sid}"}.get(kind, f"SRC{source_id}")
        stellarity = 0.0 if kind in ("background", "virtual") else 0.97
        ra, dec = (0.0, 0.0) if kind in ("background", "virtual") else (53.16 + 1e-4 * sid, -27.78 - 1e-4 * sid)
        # the nod moves the source to the next shutter; a background slitlet's reference is the middle
        ycen = col if background else col + {1: 0, 2: 1, 3: -1}[dither]
        return Slitlet(sid, quadrant, row, ycen, shutters, sid_src, name, alias, stellarity, xpos, ypos, ra, dec,
                       background, virtual, 1, dither)

    design = []
    for dither in (1, 2, 3):
        design += [slitlet(1, 1, 350, 20, "source", dither, 101, 0.12, -0.31),
                   slitlet(2, 2, 10, 60, "background", dither),
                   slitlet(3, 3, 100, 100, "virtual", dither, -3, 0.0, 0.0),
                   slitlet(4, 4, 200, 150, "source", dither, 104, -0.4, 0.45),
                   slitlet(5, 3, 5, 6, "source", dither, 101, 0.0, 0.0)]      # source 101 again
    path = str(tmp_path / "jw01234001001_01_msa.fits")
    msa.write_msa_file(path, design, PROGRAM)
    for dither in (1, 2, 3):
        ours = msa.read_slitlets(path, 1, dither, PROGRAM)
        _assert_same(_official(path, 1, dither, (-0.55, 0.55)), ours, (-0.55, 0.55))
        want = [s for s in design if s.dither_position == dither]
        assert [(s.slitlet_id, s.source_id, s.shutters, s.source_name, s.shutter_state) for s in ours] == \
            [(s.slitlet_id, s.source_id, s.shutters, s.source_name, s.shutter_state) for s in want]
        state = {1: "1x1", 2: "11x", 3: "x11"}[dither]
        assert [s.shutter_state for s in ours] == [state, "1x1", state, state, state]
