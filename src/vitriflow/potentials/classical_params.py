"""Published parameter tables for classical oxide-glass pair potentials.

Units: energies eV, lengths Å, charges e. Pair keys are the two element symbols sorted
alphabetically (``"O-Si"``), as in docs/CONTRACTS.md. Every number comes from the paper cited on
its set; the sources and their cross-checks are recorded in
../shared/data/potentials/PROVENANCE.md.

Functional forms (``form``):

* ``"buckingham"``: ``A exp(-B r) - C / r**6 + D / r**24`` with parameters ``(A, B, C, D)``
  (``B = 1/rho``); D is part of the published potential only for SHIK.
* ``"pedone"``: ``D0 [(1 - exp(-a (r - r0)))**2 - 1] + C / r**12`` with ``(D0, a, r0, C)``.

``walls`` are extra ``D / r**24`` terms that are **not** part of the published potentials: vitriflow
adds them (on by default, ``walls=False`` switches them off) because BKS, CHIK and Teter have no
short-range repulsion and collapse ("Buckingham catastrophe") once two ions cross the barrier at
~1 Å, which happens in 3000 K melts. Rule used for BKS and Teter (vitriflow's choice): D is three
times the smallest D for which short range + bare Coulomb with the set's charges has no local
maximum on 0.4 <= r <= 3.5 Å (2 significant figures). At the first-shell distances the walls add
< 1e-3 eV per pair (Si-O at 1.6 Å: 6e-4 eV for BKS). CHIK's walls (29, 113, 3423200) are the
values of a public CHIK implementation (see PROVENANCE.md), not of Carré et al. 2008; they meet the
same no-maximum criterion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: e^2 / (4 pi eps0) in eV Å (CODATA 2018); LAMMPS metal units use 14.399645.
COULOMB_EV_A = 14.3996454784


@dataclass(frozen=True)
class ParameterSet:
    """One classical potential: charges, pair table, defaults for the Coulomb treatment.

    ``neutralizing_element`` (SHIK: O) gets its charge per system from charge neutrality.
    ``require_all_pairs``: every pair of elements present must be tabulated (SHIK, where
    cation-cation pairs carry short-range terms); otherwise untabulated pairs interact by
    Coulomb only (BKS Si-Si, Teter and Pedone cation-cation, as published).
    """

    name: str
    form: str
    charges: dict[str, float]
    pairs: dict[str, tuple[float, ...]]
    citation: str
    walls: dict[str, float] = field(default_factory=dict)
    neutralizing_element: str | None = None
    require_all_pairs: bool = False
    coulomb: str = "dsf"
    alpha: float = 0.25
    cutoff: float = 8.0
    coulomb_cutoff: float = 8.0
    truncation: str = "shift"
    smoothing_width: float = 0.2
    notes: str = ""

    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(sorted(self.charges))


def pair_key(a: str, b: str) -> str:
    """Alphabetically sorted pair name, e.g. ``pair_key("Si", "O") == "O-Si"``."""
    return "-".join(sorted((a, b)))


def _buck_rho(a: float, rho: float, c: float, d: float = 0.0) -> tuple[float, float, float, float]:
    """(A, B, C, D) from the A exp(-r/rho) convention."""
    return (a, 1.0 / rho, c, d)


BKS = ParameterSet(
    name="bks",
    form="buckingham",
    charges={"Si": 2.4, "O": -1.2},
    pairs={
        "O-Si": (18003.7572, 4.87318, 133.5381, 0.0),
        "O-O": (1388.7730, 2.76000, 175.0000, 0.0),
    },
    walls={"O-Si": 46.0, "O-O": 5700.0},
    citation="B. W. H. van Beest, G. J. Kramer, R. A. van Santen, Phys. Rev. Lett. 64, 1955 (1990)",
    notes="Si-Si: Coulomb only (as published).",
)

CHIK = ParameterSet(
    name="chik",
    form="buckingham",
    charges={"Si": 1.910418, "O": -0.955209},
    pairs={
        "Si-Si": (3150.462646, 2.851451, 626.751953, 0.0),
        "O-Si": (27029.419922, 5.158606, 148.099091, 0.0),
        "O-O": (659.595398, 2.590066, 26.836679, 0.0),
    },
    walls={"Si-Si": 3423200.0, "O-Si": 29.0, "O-O": 113.0},
    citation="A. Carré, J. Horbach, S. Ispas, W. Kob, EPL 82, 17001 (2008)",
)

# SHIK: A, B, C, D (D/r^24 is part of the published potential). Si/O pairs to full precision
# from the authors' own LAMMPS inputs (github.com/compmatscirpi/SHIK-potential, 2018 paper's
# Table rounds them to 1120.5/2.8927/26.132 etc.); Na pairs: 2019 paper; Ca pairs: Shih et al.
# 2021; B pairs: 2020 paper (values as in the authors' inputs); Al pairs: 2019 paper as recorded
# in PROVENANCE.md. Pairs absent here (e.g. Si-Al, Na-Ca, B-Si) are refused, not guessed.
SHIK = ParameterSet(
    name="shik",
    form="buckingham",
    charges={
        "O": 0.0,  # set per system by charge neutrality
        "Si": 1.7755,
        "Na": 0.6018,
        "Ca": 1.4977,
        "Al": 1.6334,
        "B": 1.6126,
    },
    pairs={
        "O-O": (1120.528996, 2.892741833, 26.13207696, 16800.0),
        "O-Si": (23107.84764, 5.097856735, 139.6947857, 66.0),
        "Si-Si": (2797.979165, 4.407320018, 0.0, 3423204.0),
        "Na-O": (1127566.0, 6.8986, 40.562, 16800.0),
        "Na-Si": (495653.0, 5.4151, 0.0, 16800.0),
        "Na-Na": (1476.9, 3.4075, 0.0, 16800.0),
        "Ca-O": (146905.0, 5.6094, 45.073, 16800.0),
        "Ca-Si": (77366.0, 5.0770, 0.0, 16800.0),
        "Ca-Ca": (21633.0, 3.2562, 0.0, 16800.0),
        "Al-O": (21740.0, 5.3054, 65.815, 66.0),
        "Al-Al": (1799.1, 3.6778, 100.0, 16800.0),
        "B-O": (16182.14122, 5.6068912, 59.20266682, 32.0),
        "B-B": (1805.537033, 3.822750437, 69.1743994, 6000.0),
        "B-Na": (3148.5, 3.6183, 34.000, 16800.0),
    },
    neutralizing_element="O",
    require_all_pairs=True,
    coulomb="wolf",
    alpha=0.0,
    cutoff=8.0,
    coulomb_cutoff=10.0,
    truncation="smooth",
    smoothing_width=0.2,
    citation=(
        "S. Sundararaman, L. Huang, S. Ispas, W. Kob, J. Chem. Phys. 148, 194504 (2018) "
        "[silica]; J. Chem. Phys. 150, 154505 (2019) [alkali/alkaline-earth aluminosilicates]; "
        "J. Chem. Phys. 152, 104501 (2020) [borates]; Y.-T. Shih et al., J. Non-Cryst. Solids "
        "565, 120853 (2021) [alkaline-earth silicates]"
    ),
    notes=(
        "Coulomb: q_i q_j [1/r - 1/Rc + (r - Rc)/Rc^2] (Rc = 10 Å), short range shifted at 8 Å; "
        "both multiplied by exp(-gamma^2/(r - rc)^2), gamma = 0.2 Å, as in the authors' LAMMPS "
        "pair style shik/wolf. q_O = -(sum of cation charges)/n_O per system."
    ),
)

# Partial charges of the Cormack/Du family, shared by Teter (Du & Cormack) and Pedone (PMMCS)
CORMACK_DU_CHARGES = {"O": -1.2, "Si": 2.4, "Al": 1.8, "Na": 0.6, "K": 0.6, "Li": 0.6,
                      "Ca": 1.2, "Mg": 1.2, "P": 3.0}

# Teter potential as published by Du & Cormack (Teter never published it); cation-O and O-O only.
TETER = ParameterSet(
    name="teter",
    form="buckingham",
    charges=CORMACK_DU_CHARGES,
    pairs={
        "O-Si": _buck_rho(13702.905, 0.193817, 54.681),
        "O-O": _buck_rho(2029.2204, 0.343645, 192.58),
        "Na-O": _buck_rho(4383.7555, 0.243838, 30.70),
        "Al-O": _buck_rho(12201.417, 0.195628, 31.997),
        "Ca-O": _buck_rho(7747.1834, 0.252623, 93.109),
        "K-O": _buck_rho(20526.972, 0.233708, 51.489),
        "Li-O": _buck_rho(41051.938, 0.151160, 0.0),
        "Mg-O": _buck_rho(7060.0, 0.211, 19.2),
        "O-P": _buck_rho(26655.472, 0.181968, 86.856),
    },
    walls={
        "O-Si": 0.53,
        "O-O": 3500.0,
        "Na-O": 0.12,
        "Al-O": 0.015,
        "Ca-O": 3.8,
        "K-O": 0.0024,
        "Mg-O": 0.0039,
        "O-P": 1.0,
    },
    citation=(
        "J. Du, A. N. Cormack, J. Non-Cryst. Solids 349, 66 (2004); A. N. Cormack, J. Du, "
        "T. R. Zeitler, Phys. Chem. Chem. Phys. 4, 3193 (2002)"
    ),
    notes="Mg-O as recorded first in PROVENANCE.md (7060.0, 0.211, 19.2; other sources 7063.0, "
    "0.2109, 19.21). Deng & Du's r^-n correction is not used; vitriflow's r^-24 walls instead.",
)

PEDONE = ParameterSet(
    name="pedone",
    form="pedone",
    # Ba, Ti, Zn: the same 2006 table (not in PROVENANCE.md's excerpt), taken from amorphouspy
    # 0.8.1 pmmcs_potential.py, the cross-check PROVENANCE.md names; used by the PCF dopant family
    charges={**CORMACK_DU_CHARGES, "Ba": 1.2, "Ti": 2.4, "Zn": 1.2},
    pairs={
        "O-Si": (0.340554, 2.006700, 2.100000, 1.0),
        "O-O": (0.042395, 1.379316, 3.618701, 22.0),
        "Na-O": (0.023363, 1.763867, 3.006315, 5.0),
        "Al-O": (0.361581, 1.900442, 2.164818, 0.9),
        "Ca-O": (0.030211, 2.241334, 2.923245, 5.0),
        "Mg-O": (0.038908, 2.281000, 2.586153, 5.0),
        "K-O": (0.011612, 2.062605, 3.305308, 5.0),
        "Li-O": (0.001114, 3.429506, 2.681360, 1.0),
        "O-P": (0.831326, 2.585833, 1.800790, 1.0),
        "Ba-O": (0.065011, 1.547596, 3.393410, 5.0),
        "O-Ti": (0.024235, 2.254703, 2.708943, 1.0),
        "O-Zn": (0.001221, 3.150679, 2.851850, 1.0),
    },
    citation=(
        "A. Pedone, G. Malavasi, M. C. Menziani, A. N. Cormack, U. Segre, J. Phys. Chem. B "
        "110, 11780 (2006)"
    ),
    notes="C/r^12 repulsion is part of the published form: no walls added.",
)

PARAMETER_SETS: dict[str, ParameterSet] = {s.name: s for s in (BKS, CHIK, SHIK, TETER, PEDONE)}


# ----------------------------------------------------------------------------- parameter files
PARAMETER_FILE_VERSION = 1
_FILE_SETTINGS = ("coulomb", "alpha", "cutoff", "coulomb_cutoff", "truncation", "smoothing_width")


def parameter_set_to_dict(p: ParameterSet, provenance: dict | None = None) -> dict:
    """A Buckingham ``ParameterSet`` as the plain mapping of a parameter file: pairs as
    ``{A, rho, C, D}`` with ``A exp(-r/rho) - C/r^6 + D/r^24``, D including the set's walls."""
    if p.form != "buckingham":
        raise ValueError(f"parameter file: set {p.name!r} has form {p.form!r}; expected buckingham")
    pairs = {}
    for key in sorted(p.pairs):
        a, b, c, d = (float(x) for x in p.pairs[key])
        pairs[key] = {"A": a, "rho": 1.0 / b if b else math.inf, "C": c,
                      "D": d + float(p.walls.get(key, 0.0))}
    out = {
        "version": PARAMETER_FILE_VERSION,
        "name": p.name,
        "form": "buckingham",
        "energy": "q_i q_j e^2/(4 pi eps0 r) [Coulomb treatment below] + A exp(-r/rho) - C/r^6 "
                  "+ D/r^24; eV, Å, e",
        "charges": {el: float(q) for el, q in sorted(p.charges.items())},
        "pairs": pairs,
        **{k: getattr(p, k) for k in _FILE_SETTINGS},
        "neutralizing_element": p.neutralizing_element,
        "citation": p.citation,
        "notes": p.notes,
    }
    if provenance is not None:
        out["provenance"] = provenance
    return out


def write_parameter_file(p: ParameterSet, path, provenance: dict | None = None) -> None:
    """Write ``p`` as a YAML parameter file (atomically; floats round-trip exactly)."""
    import yaml

    from vitriflow.io import write_text

    write_text(yaml.safe_dump(parameter_set_to_dict(p, provenance), sort_keys=False), path)


def _number(path, key, value, *, positive=False, nonneg=False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and positive:
        ok = value > 0
    if ok and nonneg:
        ok = value >= 0
    if not ok:
        what = "a number > 0" if positive else ("a number >= 0" if nonneg else "a finite number")
        raise ValueError(f"{path}: {key}: expected {what}, got {value!r}")
    return float(value)


def load_parameter_file(path) -> ParameterSet:
    """The ``ParameterSet`` of a YAML (or JSON) parameter file written by
    ``write_parameter_file`` or by hand; raises ValueError naming the file and the key."""
    from pathlib import Path

    import yaml

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"buckingham potential: parameter file {str(path)!r} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())[:160]
        raise ValueError(f"{path}: not a YAML/JSON parameter file ({first})") from exc
    if not isinstance(doc, dict):
        raise ValueError(
            f"{path}: expected a mapping with charges and pairs, got {type(doc).__name__}")
    known = {"version", "name", "form", "energy", "charges", "pairs", "neutralizing_element",
             "citation", "notes", "provenance", *_FILE_SETTINGS}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    for key in ("charges", "pairs"):
        if not isinstance(doc.get(key), dict) or not doc[key]:
            raise ValueError(f"{path}: {key}: expected a non-empty mapping")
    if doc.get("form", "buckingham") != "buckingham":
        raise ValueError(f"{path}: form: expected 'buckingham', got {doc['form']!r}")
    charges = {str(el): _number(path, f"charges.{el}", q) for el, q in doc["charges"].items()}
    pairs = {}
    for key, val in doc["pairs"].items():
        parts = str(key).split("-")
        if len(parts) != 2 or not all(x in charges for x in parts):
            raise ValueError(f"{path}: pairs.{key}: expected 'X-Y' with X, Y among the charged "
                             f"elements {sorted(charges)}")
        if (not isinstance(val, dict) or set(val) - {"A", "rho", "C", "D"}
                or not {"A", "rho"} <= set(val)):
            raise ValueError(f"{path}: pairs.{key}: expected a mapping with A, rho[, C, D]; "
                             f"got {val!r}")
        name = pair_key(*parts)
        if name in pairs:
            raise ValueError(f"{path}: pairs.{key}: pair {name} is given twice")
        a = _number(path, f"pairs.{key}.A", val["A"], nonneg=True)
        rho = _number(path, f"pairs.{key}.rho", val["rho"], positive=True)
        c = _number(path, f"pairs.{key}.C", val.get("C", 0.0))
        d = _number(path, f"pairs.{key}.D", val.get("D", 0.0), nonneg=True)
        pairs[name] = (a, 1.0 / rho, c, d)
    settings = {}
    for key in _FILE_SETTINGS:
        if key not in doc:
            continue
        if key in ("coulomb", "truncation"):
            allowed = ("dsf", "wolf", "none") if key == "coulomb" else ("none", "shift", "smooth")
            if doc[key] not in allowed:
                raise ValueError(f"{path}: {key}: expected one of {allowed}, got {doc[key]!r}")
            settings[key] = doc[key]
        else:
            positive = key in ("cutoff", "coulomb_cutoff")
            settings[key] = _number(path, key, doc[key], positive=positive, nonneg=not positive)
    neutral = doc.get("neutralizing_element")
    if neutral is not None and neutral not in charges:
        raise ValueError(
            f"{path}: neutralizing_element: {neutral!r} is not among {sorted(charges)}")
    return ParameterSet(
        name=str(doc.get("name") or path.stem), form="buckingham", charges=charges, pairs=pairs,
        citation=str(doc.get("citation") or f"parameter file {path.name}"),
        neutralizing_element=neutral, notes=str(doc.get("notes") or ""), **settings,
    )
