"""JWST association files (Level 2 ``spec2`` and Level 3 ``spec3``): read, validate, write, build.

An association is JSON with ``asn_type``, ``asn_rule``, ``asn_id``, ``program``, ``asn_pool`` and
``products: [{name, members: [{expname, exptype}]}]``. Level 2 has one product per science
exposure whose members are `_rate` files; Level 3 has one product whose science members are
`_cal` files and whose background members are `_x1d` files. Member paths are relative to the
association file's directory.

Every problem is an :class:`~webbspec.errors.InputError` naming the association file (and the
member when one is at fault), so the workflow and the command line print one line.

How Stage 2 uses a Level 2 product's members (as calwebb_spec2; ``pipeline.program`` reads them,
the steps apply them): the first science member is the exposure; ``imprint`` members are
subtracted by imprint_subtract (MOS and NIRSpec IFU only) from the science and, before the
backgrounds are combined, from each ``background`` member too (bkg_subtract ``imprints=``), each
exposure taking its own imprint (one imprint: that one; several: the one with its BKGDTARG, then
OBSERVTN and PATT_NUM); ``background`` members make bkg_subtract run (it is left out without them,
except for modes with a reference background); imprint exposures are not calibrated on their own.
Departure: with several imprint members in an NRS_MSASPEC product, calwebb_spec2 3.0 means to use
the first for everything ("Wrong number of imprint members") but hands ImprintStep one path where
it expects a list, and the step fails; we apply the choice above instead.
"""

import json
import os
from dataclasses import dataclass, field

from .atomicfile import replacing
from ..errors import InputError

__all__ = ["EXPTYPES", "Member", "Product", "Association", "read", "write", "validate",
           "asn_from_list", "to_dict"]

# Member exptypes the official association rules produce.
EXPTYPES = ("science", "background", "imprint", "selfcal", "sourcecat", "segmap", "direct_image",
            "target_acquisition", "psf", "autoflat", "autowave")
ASN_TYPES = ("spec2", "spec3", "tso-spec2", "tso3", "image2", "image3")
_DEFAULT_RULE = {"spec2": "Asn_Lv2Spec", "spec3": "Asn_Lv3SpectralTarget"}


@dataclass
class Member:
    expname: str          # as written in the file (relative to the association's directory)
    exptype: str
    path: str = ""        # resolved path


@dataclass
class Product:
    name: str
    members: list = field(default_factory=list)

    def of(self, exptype):
        """Members of one exptype, in file order."""
        return [m for m in self.members if m.exptype == exptype]

    @property
    def science(self):
        return self.of("science")


@dataclass
class Association:
    path: str
    asn_type: str
    asn_rule: str
    asn_id: str
    products: list
    meta: dict = field(default_factory=dict)   # the other top-level keys, kept for round trips

    @property
    def level(self):
        return 3 if self.asn_type in ("spec3", "tso3", "image3") else 2


def read(path, check_files=True):
    """Read and validate an association; ``check_files`` requires every member file to exist."""
    path = str(path)
    try:
        with open(path) as f:
            tree = json.load(f)
    except FileNotFoundError:
        raise InputError(path, "association file does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"malformed association JSON ({exc})") from None
    return validate(tree, path, check_files=check_files)


def validate(tree, path="<association>", check_files=True):
    """Check an association tree and return it as an :class:`Association`."""
    if not isinstance(tree, dict):
        raise InputError(path, "association must be a JSON object")
    products = tree.get("products")
    if not isinstance(products, list) or not products:
        raise InputError(path, "association has no products")
    asn_type = str(tree.get("asn_type", "")).lower()
    if asn_type and asn_type not in ASN_TYPES:
        raise InputError(path, f"unknown asn_type {asn_type!r}")
    base = os.path.dirname(os.path.abspath(path)) if not path.startswith("<") else os.getcwd()
    out = []
    for i, prod in enumerate(products):
        if not isinstance(prod, dict):
            raise InputError(path, f"product {i} is not an object")
        name = str(prod.get("name") or "")
        label = name or f"#{i}"
        members = prod.get("members")
        if not isinstance(members, list) or not members:
            raise InputError(path, f"product {label} has no members")
        ms = []
        for j, m in enumerate(members):
            if not isinstance(m, dict) or "expname" not in m or "exptype" not in m:
                raise InputError(path, f"product {label} member {j} lacks expname/exptype")
            exptype = str(m["exptype"]).lower()
            expname = str(m["expname"])
            if exptype not in EXPTYPES:
                raise InputError(path, f"member {expname}: unknown exptype {m['exptype']!r}")
            full = expname if os.path.isabs(expname) else os.path.join(base, expname)
            if check_files and not os.path.exists(full):
                raise InputError(path, f"member {expname} does not exist")
            ms.append(Member(expname, exptype, full))
        if not any(m.exptype == "science" for m in ms):
            raise InputError(path, f"product {label} has no science member")
        out.append(Product(name or _default_name(ms), ms))
    if not asn_type:
        asn_type = "spec3" if any(m.expname.endswith(("_cal.fits", "_x1d.fits")) for p in out
                                  for m in p.members) else "spec2"
    meta = {k: v for k, v in tree.items() if k not in ("products", "asn_type", "asn_rule", "asn_id")}
    return Association(path, asn_type, str(tree.get("asn_rule", _DEFAULT_RULE.get(asn_type, ""))),
                       str(tree.get("asn_id", "a3001")), out, meta)


def _default_name(members):
    root = os.path.basename(members[0].expname).rsplit("_", 1)[0]
    return root


def to_dict(asn):
    """The JSON tree of an :class:`Association` (official key order)."""
    tree = {"asn_type": asn.asn_type, "asn_rule": asn.asn_rule, "asn_id": asn.asn_id}
    tree.update({k: v for k, v in asn.meta.items()})
    tree.setdefault("program", "")
    tree.setdefault("asn_pool", "none")
    tree.setdefault("version_id", None)
    tree.setdefault("code_version", _version())
    tree["products"] = [{"name": p.name, "members": [{"expname": m.expname, "exptype": m.exptype}
                                                     for m in p.members]} for p in asn.products]
    return tree


def write(asn, path):
    """Write an association atomically (temp file + rename); returns ``path``."""
    path = str(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    with replacing(path) as tmp, open(tmp, "w") as f:
        json.dump(to_dict(asn), f, indent=4)
        f.write("\n")
    return path


def asn_from_list(files, product_name, exptypes=None, rule=None, asn_type="spec3", asn_id="a3001",
                  program=None):
    """An :class:`Association` with one product holding ``files`` (like the official asn_from_list).

    ``exptypes`` is one exptype per file (default: all ``science``). Member names are kept as given.
    """
    files = [str(f) for f in files]
    if not files:
        raise InputError(product_name, "no member files given")
    exptypes = list(exptypes) if exptypes else ["science"] * len(files)
    if len(exptypes) != len(files):
        raise InputError(product_name, f"{len(exptypes)} exptypes for {len(files)} files")
    members = []
    for f, e in zip(files, exptypes):
        e = str(e).lower()
        if e not in EXPTYPES:
            raise InputError(f, f"unknown exptype {e!r}")
        members.append(Member(f, e, os.path.abspath(f)))
    if not any(m.exptype == "science" for m in members):
        raise InputError(product_name, "no science member")
    meta = {"program": program or _program_of(files[0]), "asn_pool": "none"}
    return Association("<new>", asn_type, rule or _DEFAULT_RULE.get(asn_type, "DMS_Level3_Base"),
                       asn_id, [Product(product_name, members)], meta)


def _program_of(name):
    base = os.path.basename(name)
    return base[2:7] if base.startswith("jw") and base[2:7].isdigit() else "noprogram"


def _version():
    from .. import __version__
    return f"webbspec {__version__}"
