"""The multitask network: composition features -> physical parameters -> properties.

One shared trunk (MLP, GELU, dropout) feeds a linear head of 34 raw outputs. Each raw output
is mapped to a physical parameter through a transform that enforces its sign or bounds
(Tg, Sconf(Tg), molar volumes, heat capacities > 0; fragility >= the Arrhenius limit
12 - A; 0 < T0(VFT) < Tg; Sellmeier UV poles below the shortest wavelength in the data).
Reference values (the offsets below) centre the untrained network on typical silicates, as
i-Melt does through its output-bias initialisation.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from vitriflow.surrogates.viscosity import equations as eq
from vitriflow.surrogates.viscosity.features import ATOMS_PER_OXIDE, MOLAR_MASS
from vitriflow.surrogates.viscosity.options import REFRACTIVE_INDEX_LAWS

# reference partial molar volumes of the oxides in glasses/melts, cm3/mol (Courtial & Dingwell
# 1999; Lange 1997) and partial molar liquid heat capacities, J/mol/K (Richet & Bottinga 1985)
_V_REF = (27.29, 36.66, 29.65, 47.28, 12.66, 20.66)
_CP_REF = (81.37, 130.2, 100.6, 50.13, 85.78, 86.05)
# reference Lorentz-Lorenz fractions R_i / V_i of the oxides at the sodium D line: an ideal-mixing
# fit of the training split's n_D (refractivities and volumes both additive); only centres
# the partial molar refractivities R_i = fraction_i * V_ref_i of the Lorentz-Lorenz option
_LL_FRACTION_REF = (0.281, 0.359, 0.330, 0.321, 0.433, 0.485)
_CPB_REF = (0.03, 0.01578)  # T-dependence of Cp for Al2O3 and K2O, J/mol/K^2
A_REF = -3.5
A_HALF_RANGE = 4.0  # A in (-7.5, 0.5) log10 Pa s: high-T limits of silicate melts
SELLMEIER_UV_MAX = 0.045  # um^2; below (0.2302 um)^2, the shortest wavelength in the data
N_RAW = 34


def _inv_softplus(y: float) -> float:
    return math.log(math.expm1(y))


class MeltNet(nn.Module):
    """Composition (39 scaled features + 6 raw fractions) -> dict of physical parameters."""

    def __init__(
        self,
        n_features: int,
        hidden: int = 256,
        layers: int = 3,
        dropout: float = 0.2,
        linear_skip: bool = False,
        refractive_index_law: str = "sellmeier",
        density_prior: bool = False,
    ):
        super().__init__()
        # density_prior: the molar volume is a given prior volume (forward's v_prior) times
        # exp(sum_i x_i (1 - x_i) z_i), a learned excess-volume correction that vanishes at
        # every end-member (where the prior is pinned or extrapolated) and is ~0 at start
        self.density_prior = density_prior
        if refractive_index_law not in REFRACTIVE_INDEX_LAWS:
            raise ValueError(
                f"refractive_index_law: expected one of {REFRACTIVE_INDEX_LAWS}, "
                f"got {refractive_index_law!r}"
            )
        # lorentz_lorenz: 6 more raw outputs, the oxides' partial molar refractivities
        self.lorentz_lorenz = refractive_index_law == "lorentz_lorenz"
        n_raw = N_RAW + (6 if self.lorentz_lorenz else 0)
        blocks: list[nn.Module] = []
        width = n_features
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        self.trunk = nn.Sequential(*blocks)
        self.head = nn.Linear(width, n_raw)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)
        # raw outputs linear in the 6 mole fractions, beside the trunk (starts at 0): an
        # ideal-mixing path that extrapolates towards end-member compositions without the
        # nonlinear units
        self.skip = nn.Linear(6, n_raw, bias=False) if linear_skip else None
        if self.skip is not None:
            nn.init.zeros_(self.skip.weight)
        self.register_buffer("molar_mass", torch.tensor(MOLAR_MASS, dtype=torch.float32))
        self.register_buffer("atoms", torch.tensor(ATOMS_PER_OXIDE, dtype=torch.float32))
        self.register_buffer("log_v_ref", torch.log(torch.tensor(_V_REF)))
        self.register_buffer("log_cp_ref", torch.log(torch.tensor(_CP_REF)))
        self.register_buffer("log_cpb_ref", torch.log(torch.tensor(_CPB_REF)))
        if self.lorentz_lorenz:
            r_ref = torch.tensor(_LL_FRACTION_REF) * torch.tensor(_V_REF)
            self.register_buffer("log_r_ref", torch.log(r_ref))

    def forward(self, feats: torch.Tensor, x: torch.Tensor,
                v_prior: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        z = self.head(self.trunk(feats))
        if self.skip is not None:
            z = z + self.skip(x)
        col = lambda i: z[:, i : i + 1]  # noqa: E731
        bounded_a = lambda i, ref: ref + A_HALF_RANGE * torch.tanh(col(i) / A_HALF_RANGE)  # noqa: E731
        p: dict[str, torch.Tensor] = {}
        p["tg"] = 1000.0 * torch.exp(col(0))
        p["sconf_tg"] = 8.0 * torch.exp(col(1))
        p["ae"] = bounded_a(2, A_REF)  # shared by Adam-Gibbs and MYEGA
        p["a_am"] = bounded_a(3, A_REF)
        p["a_fv"] = bounded_a(4, A_REF)
        p["a_vft"] = bounded_a(5, A_REF - 1.0)
        # fragility >= 12 - A for both equations that use it: Arrhenius is the strong limit
        m_min = 12.0 - torch.minimum(p["ae"], p["a_am"])
        p["fragility"] = m_min + 28.0 * torch.exp(col(6))
        p["t0_vft"] = p["tg"] * torch.sigmoid(col(7))
        p["t0_fv"] = 0.7 * p["tg"] * torch.exp(col(8))
        p["c_fv"] = 61.0 * torch.exp(col(9))
        if self.density_prior:
            if v_prior is None:
                raise ValueError("MeltNet: built with a density prior, but no prior volume given")
            mixing = (x * (1.0 - x) * z[:, 10:16]).sum(dim=1, keepdim=True)
            p["molar_volume"] = v_prior * torch.exp(mixing)
        else:
            vm = torch.exp(z[:, 10:16] + self.log_v_ref)  # partial molar volumes, cm3/mol
            p["molar_volume"] = (x * vm).sum(dim=1, keepdim=True)
        p["density"] = (x @ self.molar_mass).unsqueeze(1) / p["molar_volume"]
        cp_i = torch.exp(z[:, 16:22] + self.log_cp_ref)
        cpb = torch.exp(z[:, 22:24] + self.log_cpb_ref)
        p["cp_a"] = (x * cp_i).sum(dim=1, keepdim=True)
        p["cp_b"] = cpb[:, 0:1] * x[:, 1:2] + cpb[:, 1:2] * x[:, 3:4]
        # glass Cp at Tg: Dulong-Petit, 3R per atom; Cp_conf = ap + b T is kept >= 0
        cpg = 3.0 * eq.R_GAS * (x @ self.atoms).unsqueeze(1)
        p["cp_conf_a"] = F.softplus(p["cp_a"] - cpg)
        p["sellmeier_B"] = F.softplus(
            z[:, 24:27]
            + torch.tensor([_inv_softplus(v) for v in (0.9, 0.2, 0.98)], device=z.device)
        )
        c_uv = SELLMEIER_UV_MAX * torch.sigmoid(
            z[:, 27:29] + torch.tensor([-1.8, 0.0], device=z.device)
        )
        c_ir = 100.0 * torch.exp(z[:, 29:30])
        p["sellmeier_C"] = torch.cat([c_uv, c_ir], dim=1)
        p["elastic_modulus"] = 80.0 * torch.exp(col(30))
        p["cte"] = 8.5 * torch.exp(col(31))
        p["abbe_number"] = 57.0 * torch.exp(col(32))
        p["liquidus"] = 1585.0 * torch.exp(col(33))
        if self.lorentz_lorenz:
            # n from molar refractivity over the same molar volume that gives the density
            r_i = torch.exp(z[:, 34:40] + self.log_r_ref)  # partial molar refractivities, cm3/mol
            p["molar_refractivity"] = (x * r_i).sum(dim=1, keepdim=True)
        return p


def viscosity(
    p: dict[str, torch.Tensor], T: torch.Tensor, which=eq.EQUATIONS
) -> dict[str, torch.Tensor]:
    """log10 viscosity from every requested equation, for parameter rows p at T (n, 1)."""
    out = {}
    if "ag" in which:
        out["ag"] = eq.adam_gibbs(T, p["tg"], p["ae"], p["sconf_tg"], p["cp_conf_a"], p["cp_b"])
    if "myega" in which:
        out["myega"] = eq.myega(T, p["tg"], p["ae"], p["fragility"])
    if "am" in which:
        out["am"] = eq.avramov_milchev(T, p["tg"], p["a_am"], p["fragility"])
    if "vft" in which:
        out["vft"] = eq.vft(T, p["tg"], p["a_vft"], p["t0_vft"])
    if "fv" in which:
        out["fv"] = eq.free_volume(T, p["tg"], p["a_fv"], p["t0_fv"], p["c_fv"])
    return out


def heat_capacity(p: dict[str, torch.Tensor], T: torch.Tensor) -> torch.Tensor:
    """Liquid heat capacity Cp(T) = a + b T, J/mol/K."""
    return p["cp_a"] + p["cp_b"] * T


def refractive_index(p: dict[str, torch.Tensor], lbd_um: torch.Tensor) -> torch.Tensor:
    if "molar_refractivity" in p:
        return eq.lorentz_lorenz(
            lbd_um, p["molar_refractivity"], p["molar_volume"], p["sellmeier_B"], p["sellmeier_C"]
        )
    return eq.sellmeier(lbd_um, p["sellmeier_B"], p["sellmeier_C"])
