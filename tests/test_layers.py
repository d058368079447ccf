"""The package's shape: imports go one way between the layers, mode knowledge lives in modes.py and
instruments/, and a step a mode lists but does not implement is an error when the run is planned."""

import ast
import os

import pytest

from webbspec.errors import InputError
from webbspec.modes import MODES, check_implemented, mode_by_name

PKG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "webbspec")

# rank of each layer: a module may import its own layer and lower ones only
RANK = {"errors": 0, "dq": 0, "modes": 0, "__init__": 0, "io": 1, "algorithms": 2, "instruments": 3,
        "steps": 3, "pipeline": 4, "simulate": 4, "workflow": 5, "report": 5, "cli": 5, "__main__": 5}


def _modules():
    for dirpath, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, os.path.dirname(PKG))[:-3].split(os.sep)
                pkg = rel[:-1] if rel[-1] != "__init__" else rel[:-1]
                yield path, ".".join(rel if rel[-1] != "__init__" else rel[:-1]), pkg


def _layer(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path, pkg):
    """Absolute names of the webbspec modules (or packages) ``path`` imports."""
    out = []
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "webbspec":     # from webbspec import x: x is the module
                out += [f"webbspec.{a.name}" for a in node.names if a.name != "__version__"]
            elif mod.startswith("webbspec"):
                out.append(mod)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("webbspec")]
    return out


def test_imports_go_one_way_between_layers():
    wrong = []
    for path, module, pkg in _modules():
        for target in _imports(path, pkg):
            if RANK[_layer(target)] > RANK[_layer(module)]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layers: " + "; ".join(wrong)


def test_every_module_sits_in_a_layer():
    top = sorted(f[:-3] for f in os.listdir(PKG) if f.endswith(".py"))
    assert set(top) <= set(RANK), f"modules outside the layer folders: {set(top) - set(RANK)}"
    for name in os.listdir(PKG):
        if os.path.isdir(os.path.join(PKG, name)) and not name.startswith("__"):
            assert name in RANK, f"folder {name} is not a layer"


def _string_constants(tree):
    """String literals of a module, docstrings excluded (they may explain modes)."""
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docs.add(id(body[0].value))
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_exp_types_and_mode_names_only_in_modes_and_instruments():
    names = {e for m in MODES.values() for e in m.exp_types} | set(MODES)
    names |= {"NRS_BRIGHTOBJ", "NRS_AUTOWAVE", "NRS_LAMP", "NRS_AUTOFLAT", "NRC_TSGRISM", "MIR_WFSS"}
    found = []
    for path, module, _ in _modules():
        rel = os.path.relpath(path, PKG)
        if rel == "modes.py" or rel.startswith("instruments" + os.sep):
            continue
        for value in _string_constants(ast.parse(open(path).read())):
            hits = [n for n in names if n == value.strip() or n.lower() == value.strip().lower()
                    or f'"{n}"' in value or f"'{n}'" in value]
            found += [f"{rel}: {h!r}" for h in hits]
    assert not found, "mode knowledge outside modes.py / instruments/: " + "; ".join(sorted(set(found)))


def test_a_step_a_mode_lacks_is_a_planning_error():
    mos = MODES["nrs_mos"]
    check_implemented(mos, mos.spec3, "x_spec3_asn.json")          # Stage 3 of delivered _cal: fine
    lrs = mode_by_name("mir_lrs_fs")
    with pytest.raises(InputError, match=r"x_rate.fits: mode mir_lrs_fs: step assign_wcs is not implemented"):
        check_implemented(lrs, lrs.spec2, "x_rate.fits")
    with pytest.raises(InputError, match="mode nis_wfss: step extract_1d is not implemented"):
        check_implemented(mode_by_name("NIS_WFSS"), mode_by_name("NIS_WFSS").spec3, "wfss_spec3_asn.json")


def test_stage3_does_not_drop_a_step_it_cannot_run():
    from webbspec.pipeline import stage3

    assert stage3._mode_steps("nrs_fs") == MODES["nrs_fs"].spec3
    with pytest.raises(InputError, match=r"mode mir_mrs: step \w+ has no per-source slit"):
        stage3._mode_steps("mir_mrs")


def test_every_mode_row_names_a_known_stage3_path_and_source_rule():
    from webbspec.modes import SOURCE_RULES, STAGE3_KINDS

    for m in MODES.values():
        assert m.stage3_kind in STAGE3_KINDS and m.source_rule in SOURCE_RULES
        assert set(m.implemented) <= set(m.spec2) | set(m.spec3)
    assert MODES["mir_mrs"].stage3_kind == "cubes" and MODES["nrs_fs"].stage3_kind == "slits"


def test_extract_1d_refuses_a_cube_rather_than_reading_its_planes_as_integrations():
    import numpy as np
    from astropy.io import fits

    from webbspec.io.datamodels import Model, Slit
    from webbspec.steps import extract_1d

    cube = Model(fits.Header({"EXP_TYPE": "MIR_MRS"}), [Slit(fits.Header(), {"SCI": np.ones((5, 4, 3), np.float32)})],
                 "single")
    with pytest.raises(InputError, match="mode mir_mrs: extraction from IFU cubes is not implemented"):
        extract_1d.run(cube, {})
