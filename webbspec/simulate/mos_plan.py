"""The MSA plan of a simulated MOS program: configurations, slitlets, sources, nods, failed shutters.

* Slitlets are 1x3 (three adjacent columns of one shutter row) placed in "slots" along the slit
  direction: middle columns 2, 6, 10, ... of each half of the MSA (Q1/Q3 above the fixed slits,
  Q2/Q4 below), a closed column between neighbours, so no two slitlets' light shares detector
  rows. Each slot gets a random side (left quadrant Q1/Q2 or right Q3/Q4) and row; a slot is used
  when the slitlet's light, with the official cutout margins, lies inside the frame's rows on
  every detector it reaches. With G395M every spectrum spans ~3900 pixels, so at most one
  slitlet per slot fits a configuration (~80 on full frames); more sources go into further MSA
  configurations (one ``_msa.fits`` each, MSAMETID = configuration number), as a survey does.
  ``per_slot`` > 1 lets up to that many slitlets share a slot (each on its own side and row):
  their spectra overlap on the detector, as in real high-multiplex programs that accept
  overlaps, so one configuration holds up to ~``per_slot`` x 85 slitlets (Stage 2 benchmarks
  of one exposure with 200 slitlets; truth tests keep one per slot).
* Per configuration: a few background slitlets (no source: official names ``<prog>_BKG<id>``,
  source id = slitlet id), one virtual slitlet (negative source id, absent from SOURCE_INFO,
  sky only), the rest hold one source each (~60 % point, stellarity > 0.75 or -1; the others
  extended, stellarity < 0.75). Slitlet ids are unique over the program.
* 3-point nod along the slitlet (PATTTYPE 3-SHUTTER-SLITLET): dither point k moves the sky by
  NOD_SHIFTS[k] shutter pitches along the columns, so a source sits in the middle, upper and
  lower shutter at the same position inside it (the MSA file: one row per shutter per dither
  point, the primary one moving).
* Failed-open shutters: outside every slitlet; the first one in a column of a source slitlet
  (its spectrum falls on that slitlet's rows: contamination for imprint_subtract and
  msa_flagging to remove), plus a few failed-closed ones (ignored by msa_flagging).
"""

from dataclasses import dataclass

import numpy as np

from ..instruments.nirspec.msa import Slitlet
from . import mos_optics_refs as msa_design
from .mos_scene import LINES_REST, Source

__all__ = ["PlannedSlitlet", "Plan", "make_plan", "NOD_SHIFTS", "msa_slitlets", "slitlet_shutters",
           "FIRST_SOURCE_ID", "slot_columns"]

NOD_SHIFTS = (0, 1, -1)              # shutter pitches the sky moves along the columns, dither points 1..3
SLOT_STEP = 4                        # columns between slitlet centres (one closed column between)
FIRST_SOURCE_ID = 100001
N_BACKGROUND = {"small": 2, "full": 4}      # background slitlets per configuration
N_FAILED = {"small": (2, 2), "full": (8, 4)}  # failed open, failed closed shutters
# the official slit-frame extent of a 1x3 slitlet about its middle shutter [open heights], which
# the official cutout widens by 3 rows below and 1 above: it must stay inside the frame
_REACH = Slitlet(0, 1, 1, 2, ((1, 1, 1), (1, 1, 2), (1, 1, 3)), 0, "", "", 0.0, 0.0, 0.0, 0.0, 0.0, True, False,
                 1, 1).slit_y_limits()[1]
_ROW_MARGIN = 4                      # pixels kept free at the frame's top and bottom


@dataclass(frozen=True)
class PlannedSlitlet:
    slitlet_id: int
    config: int                  # MSA configuration (MSAMETID)
    quadrant: int
    row: int
    column: int                  # middle shutter
    kind: str                    # "source", "background" or "virtual"
    source: Source = None

    @property
    def source_id(self):
        """The official source id: the source's, the slitlet id (background), -slitlet id (virtual)."""
        if self.kind == "source":
            return self.source.source_id
        return self.slitlet_id if self.kind == "background" else -self.slitlet_id

    def shutters(self):
        return slitlet_shutters(self.quadrant, self.row, self.column)


@dataclass
class Plan:
    configs: list                # per configuration (1-based index + 1): [PlannedSlitlet]
    failed_open: list            # [(quadrant, row, column)]
    failed_closed: list

    @property
    def slitlets(self):
        return [s for c in self.configs for s in c]

    @property
    def sources(self):
        return [s.source for s in self.slitlets if s.kind == "source"]


def slitlet_shutters(quadrant, row, column):
    return tuple((quadrant, row, c) for c in (column - 1, column, column + 1))


def slot_columns():
    """[(half, middle column)]: half "top" (Q1/Q3) or "bottom" (Q2/Q4)."""
    cols = range(2, msa_design.N_COLUMNS, SLOT_STEP)
    return [("top", c) for c in cols] + [("bottom", c) for c in cols]


def _fits_frame(optics_list, frames, quadrant, row, column):
    """Whether the slitlet's light and cutout margins lie inside every frame it reaches in y."""
    lam = np.linspace(2.87e-6, 5.10e-6, 9)
    for optics, (y0, ny) in zip(optics_list, frames):
        x, y = optics.slit_to_detector((quadrant, row, column), 0.0, np.array([[-_REACH], [_REACH]]), lam)
        on = (x >= 0) & (x <= 2047)
        if not on.any():
            continue
        ys = y[:, on.any(axis=0)]
        if ys.min() < y0 + _ROW_MARGIN or ys.max() > y0 + ny - 1 - _ROW_MARGIN:
            return False
    return True


def _draw_row(rng, side, scale):
    """Shutter row: anywhere on full frames; in the small program, the half nearest the MSA
    centre (spectra split between NRS1 and NRS2)."""
    n = msa_design.N_ROWS
    if scale == "full":
        return int(rng.integers(1, n + 1))
    return int(rng.integers(n // 2, n + 1)) if side == "left" else int(rng.integers(1, n // 2 + 1))


def _quadrant(half, side):
    return {("top", "left"): 1, ("bottom", "left"): 2, ("top", "right"): 3, ("bottom", "right"): 4}[(half, side)]


def _layout(rng, optics_list, frames, scale, per_slot=1):
    """[(quadrant, row, column)] of the usable slots of one configuration, in slot order
    (``per_slot``: up to that many slitlets per slot, distinct shutters, overlapping spectra)."""
    out = []
    for half, col in slot_columns():
        here = []
        for k in range(per_slot):
            side = "left" if rng.random() < 0.5 else "right"
            q, row = _quadrant(half, side), _draw_row(rng, side, scale)
            if (q, row) not in here and _fits_frame(optics_list, frames, q, row, col):
                here.append((q, row))
        out += [(q, row, col) for q, row in here]
    return out


def _source(rng, source_id, kind):
    """A source's position in its shutter and spectrum (continuum, redshift, lines)."""
    z = float(rng.uniform(0.5, 6.5))
    lines = tuple(float(v) for v in rng.uniform(0.5, 6.0, len(LINES_REST)) * (rng.random(len(LINES_REST)) < 0.7))
    if kind == "point":
        st = -1.0 if rng.random() < 0.1 else float(rng.uniform(0.8, 1.0))
        return Source(source_id, "point", st, float(rng.uniform(-0.25, 0.25)), float(rng.uniform(-0.3, 0.3)), 0.0,
                      float(rng.uniform(8e-6, 5e-5)), float(rng.uniform(-2.0, 0.5)), z, lines,
                      float(rng.uniform(80.0, 200.0)))
    return Source(source_id, "extended", float(rng.uniform(0.02, 0.6)), 0.0, float(rng.uniform(-0.3, 0.3)),
                  float(rng.uniform(0.2, 0.5)), float(rng.uniform(0.05, 0.4)), float(rng.uniform(-2.0, 0.5)), z,
                  lines, float(rng.uniform(80.0, 200.0)))


def make_plan(scale, nsources, seed, optics_list, frames, fill=False, per_slot=1):
    """The plan of ``nsources`` sources (``fill``: as many as one configuration holds).
    ``optics_list``: an :class:`Optics` per detector; ``frames``: (first row, number of rows)
    of each detector's image (0-based full frame); ``per_slot``: slitlets a slot may hold
    (1: no two slitlets share detector rows; more: overlapping spectra, see the module notes)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7012]))
    nbkg, nvirt = N_BACKGROUND[scale], 1
    configs, sid, slitlet_id = [], FIRST_SOURCE_ID, 1
    left = int(nsources)
    if left < 1 and not fill:
        raise ValueError(f"nsources must be at least 1, not {nsources}")
    while left > 0 or not configs:
        slots = _layout(rng, optics_list, frames, scale, int(per_slot))
        room = len(slots) - nbkg - nvirt
        if room < 1:
            raise ValueError(f"only {len(slots)} slitlets fit the frame: no room for sources")
        nsrc = room if fill else min(room, left)
        kinds = ["background"] * nbkg + ["virtual"] * nvirt + ["source"] * nsrc
        order = rng.permutation(len(slots))[:len(kinds)]
        kinds = [kinds[i] for i in rng.permutation(len(kinds))]
        cfg = []
        for k, i in enumerate(sorted(order)):
            q, row, col = slots[i]
            src = None
            if kinds[k] == "source":
                src = _source(rng, sid, "point" if rng.random() < 0.6 else "extended")
                sid += 1
            cfg.append(PlannedSlitlet(slitlet_id, len(configs) + 1, q, row, col, kinds[k], src))
            slitlet_id += 1
        configs.append(cfg)
        left -= nsrc
    fo, fc = _failed_shutters(rng, configs, optics_list, frames, *N_FAILED[scale])
    return Plan(configs, fo, fc)


def _failed_shutters(rng, configs, optics_list, frames, n_open, n_closed):
    """Failed open / closed shutters off every slitlet (not within a column of one); the first
    failed-open one shares a column (detector rows) with a source slitlet of configuration 1."""
    taken = {(s.quadrant, s.row, c + d) for cfg in configs for s in cfg
             for c in (s.column - 1, s.column, s.column + 1) for d in (-1, 0, 1)}
    out = []
    target = next((s for s in configs[0] if s.kind == "source"), configs[0][0])
    tries = 0
    while len(out) < n_open + n_closed:
        tries += 1
        if not out and tries < 200:     # across the MSA from the target, in its middle column
            q = {1: 3, 3: 1, 2: 4, 4: 2}[target.quadrant]
            col = target.column
        else:
            q, col = int(rng.integers(1, 5)), int(rng.integers(1, msa_design.N_COLUMNS + 1))
        row = int(rng.integers(1, msa_design.N_ROWS + 1))
        key = (q, row, col)
        if key in taken or key in out or not _fits_frame(optics_list, frames, q, row, col):
            continue
        out.append(key)
    return out[:n_open], out[n_open:]


def msa_slitlets(plan_config, program, sky_of):
    """The :class:`Slitlet` rows of one configuration for the MSA file: every slitlet at every
    dither point. ``sky_of(slitlet)``: (ra, dec) [deg] of its source (or its middle shutter)."""
    out = []
    prog = str(program).lstrip("0")
    for s in plan_config:
        shutters = s.shutters()
        ra, dec = sky_of(s)
        for k, shift in enumerate(NOD_SHIFTS, start=1):
            common = dict(slitlet_id=s.slitlet_id, quadrant=s.quadrant, xcen=s.row, shutters=shutters,
                          msa_metadata_id=s.config, dither_position=k)
            if s.kind == "background":
                out.append(Slitlet(ycen=s.column, source_id=s.slitlet_id, source_name=f"{prog}_BKG{s.slitlet_id}",
                                   source_alias=f"BKG{s.slitlet_id}", stellarity=0.0, source_xpos=0.0,
                                   source_ypos=0.0, source_ra=0.0, source_dec=0.0, background=True,
                                   virtual=False, **common))
            elif s.kind == "virtual":
                out.append(Slitlet(ycen=s.column + shift, source_id=-s.slitlet_id,
                                   source_name=f"{prog}_VRT{s.slitlet_id}", source_alias=f"VRT{s.slitlet_id}",
                                   stellarity=0.0, source_xpos=0.0, source_ypos=0.0, source_ra=0.0,
                                   source_dec=0.0, background=False, virtual=True, **common))
            else:
                src = s.source
                out.append(Slitlet(ycen=s.column + shift, source_id=src.source_id,
                                   source_name=f"{prog}_{src.source_id}", source_alias=f"SRC{src.source_id}",
                                   stellarity=src.stellarity, source_xpos=src.xpos, source_ypos=src.ypos,
                                   source_ra=ra, source_dec=dec, background=False, virtual=False, **common))
    return out
