"""Topological constraint counting for oxide glass skeletons (Liu et al., thesis Ch. 5).

The thesis counts constraints per atom of the *skeleton* network (network formers and oxygen,
modifiers excluded) of (Na2O)x(Al2O3)y(SiO2)1-x-y, Eqs. 5-2..5-6 and Table 5-1:

* Si (CN 4): 4 bond-stretching (BS) + 5 bond-bending (BB) constraints;
* tetrahedral Al (CN 4, charge-compensated by a modifier): 4 BS + 0 BB;
* bridging O (2 network formers): 1 BB; non-bridging O: none; BS is attributed to cations only;
* modifiers (Na) create no constraints and are not counted in the skeleton.

Here the same rules are written per atom species so that any glass made of the supported oxides
gets the same numbers as the closed forms for the sodium aluminosilicates:

* tetrahedral formers counted like Si: SiO2, GeO2 (4 BS + 5 BB per cation);
* Al2O3 as tetrahedral Al (4 BS + 0 BB), which needs one positive modifier charge per Al;
* modifiers Li2O, Na2O, K2O, Rb2O, Cs2O, MgO, CaO, SrO, BaO: no constraints; the charge not used
  to compensate AlO4- creates non-bridging oxygen (one NBO per unit of charge).

Refused, with a one-line reason: any other oxide (B2O3 and P2O5 change coordination or carry a
double bond, transition metals have ill-defined roles), peraluminous glasses (Al2O3 exceeding the
modifier charge, where Al is 5/6-fold or forms triclusters) and glasses with more NBO than oxygen
can supply (beyond orthosilicate).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

# cation count per oxide formula, oxygen count, and role
_FORMERS_SI_LIKE = {"SiO2": (1, 2), "GeO2": (1, 2)}
_AL = {"Al2O3": (2, 3)}
_MODIFIERS = {  # oxide: (cations, oxygens, charge per cation)
    "Li2O": (2, 1, 1), "Na2O": (2, 1, 1), "K2O": (2, 1, 1), "Rb2O": (2, 1, 1), "Cs2O": (2, 1, 1),
    "MgO": (1, 1, 2), "CaO": (1, 1, 2), "SrO": (1, 1, 2), "BaO": (1, 1, 2),
}
SUPPORTED_OXIDES = tuple(sorted([*_FORMERS_SI_LIKE, *_AL, *_MODIFIERS]))
MODIFIER_OXIDES = tuple(sorted(_MODIFIERS))

BS_SI, BB_SI = 4, 5  # tetrahedral Si (and Ge)
BS_AL, BB_AL = 4, 0  # tetrahedral Al: no angular constraints (thesis, ref. [31])
BB_BO = 1  # bridging oxygen


class TopologyError(ValueError):
    """A composition outside what the constraint-counting rules describe."""


@dataclass(frozen=True)
class Constraints:
    """Constraint counts per skeleton atom and skeleton populations per oxide formula unit."""

    n_c: float  # total constraints per skeleton atom (Eq. 5-2)
    BS: float  # bond-stretching constraints per skeleton atom (Eq. 5-3)
    BB: float  # bond-bending constraints per skeleton atom (Eq. 5-4)
    n_c_Si: float  # constraints created by Si (and Ge) per skeleton atom (Eq. 5-5)
    n_c_Al: float  # constraints created by Al per skeleton atom (Eq. 5-6)
    f_NBO: float  # non-bridging fraction of oxygen
    n_SiOSi: float  # Si-O-Si links per Si with Al avoidance (Loewenstein); 4 for silica
    modifier_frac: float  # mole fraction of modifier oxides
    skeleton_atoms: float  # Si+Ge+Al+O per oxide formula unit

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def canonical_oxides(composition: Mapping[str, float],
                     what: str = "composition") -> dict[str, float]:
    """The same amounts under the supported spelling of each oxide ('na2o' -> 'Na2O'), as the
    viscosity CLI reads them; unknown names are kept for ``normalise`` to refuse."""
    spelling = {o.lower(): o for o in SUPPORTED_OXIDES}
    out: dict[str, float] = {}
    for k, v in composition.items():
        name = spelling.get(str(k).strip().lower(), k)
        if name in out:
            raise TopologyError(f"{what}: {name} given twice")
        out[name] = v
    return out


def normalise(composition: Mapping[str, float], what: str = "composition") -> dict[str, float]:
    """Oxide amounts (any scale) -> mole fractions; refuses unsupported oxides and bad numbers."""
    if not composition:
        raise TopologyError(f"{what}: empty composition")
    composition = canonical_oxides(composition, what)
    bad = sorted(k for k in composition if k not in SUPPORTED_OXIDES)
    if bad:
        raise TopologyError(
            f"{what}: unsupported oxide(s) {', '.join(bad)}; constraint counting supports "
            f"{', '.join(SUPPORTED_OXIDES)}"
        )
    values = {k: float(v) for k, v in composition.items()}
    neg = {k: v for k, v in values.items() if not v >= 0}  # also catches NaN
    if neg:
        raise TopologyError(f"{what}: negative or missing oxide amount(s) {neg}")
    total = sum(values.values())
    if total <= 0:
        raise TopologyError(f"{what}: oxide amounts sum to {total}, expected > 0")
    return {k: v / total for k, v in values.items() if v > 0}


def count_constraints(composition: Mapping[str, float], what: str = "composition") -> Constraints:
    """Constraints per skeleton atom for one glass given as oxide amounts (mol, any scale).

    For (Na2O)x(Al2O3)y(SiO2)1-x-y this reproduces Eqs. 5-2..5-6 exactly.
    """
    x = normalise(composition, what)
    n_si = sum(x.get(k, 0.0) * c for k, (c, _) in _FORMERS_SI_LIKE.items())
    n_al = x.get("Al2O3", 0.0) * 2
    n_o = sum(x.get(k, 0.0) * o for k, (_, o) in {**_FORMERS_SI_LIKE, **_AL}.items())
    n_o += sum(x.get(k, 0.0) * o for k, (_, o, _) in _MODIFIERS.items())
    charge = sum(x.get(k, 0.0) * c * q for k, (c, _, q) in _MODIFIERS.items())
    if n_si + n_al <= 0:
        raise TopologyError(f"{what}: no network former (SiO2, GeO2, Al2O3): no skeleton to count")
    if n_al > charge + 1e-9:
        raise TopologyError(
            f"{what}: peraluminous (Al {n_al:.4g} > modifier charge {charge:.4g} per formula "
            "unit); "
            "tetrahedral-Al counting needs Al2O3 <= charge-balancing modifier oxides"
        )
    nbo = max(charge - n_al, 0.0)
    bo = n_o - nbo
    # every former needs its 4 oxygens: 4(Si+Al) = 2 BO + NBO; more NBO than that is not a network
    if bo < -1e-9 or nbo > 4 * (n_si + n_al) + 1e-9:
        raise TopologyError(
            f"{what}: {nbo:.4g} non-bridging O per formula unit exceed what the network "
            f"can hold ({n_o:.4g} O); modifier content too high for a connected network"
        )
    bo = max(bo, 0.0)
    skeleton = n_si + n_al + n_o
    bs = BS_SI * n_si + BS_AL * n_al
    bb = BB_SI * n_si + BB_AL * n_al + BB_BO * bo
    sisi_bridges = max(bo - 4 * n_al, 0.0)  # Al-O-Al avoided: every Al-O bridges to Si
    return Constraints(
        n_c=(bs + bb) / skeleton,
        BS=bs / skeleton,
        BB=bb / skeleton,
        n_c_Si=(BS_SI + BB_SI) * n_si / skeleton,
        n_c_Al=(BS_AL + BB_AL) * n_al / skeleton,
        f_NBO=nbo / n_o,
        n_SiOSi=2 * sisi_bridges / n_si if n_si > 0 else 0.0,
        modifier_frac=sum(x.get(k, 0.0) for k in _MODIFIERS),
        skeleton_atoms=skeleton,
    )


def closed_form_nas(x: float, y: float) -> dict[str, float]:
    """The thesis' closed forms (Eqs. 5-2..5-6) for (Na2O)x(Al2O3)y(SiO2)1-x-y, x, y fractions."""
    d = 3 - 2 * x + 2 * y
    return {
        "n_c": (11 - 12 * x + 2 * y) / d,
        "BS": (4 - 4 * x + 4 * y) / d,
        "BB": (7 - 8 * x - 2 * y) / d,
        "n_c_Si": (9 - 9 * x - 9 * y) / d,
        "n_c_Al": 8 * y / d,
    }
