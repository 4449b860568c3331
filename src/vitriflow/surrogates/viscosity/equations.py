"""Viscosity equations and property models (torch), written so that physics holds by construction.

All viscosities are log10(Pa s). Every equation is parameterised through Tg, so that it passes
through 10^12 Pa s at T = Tg exactly (Le Losq et al., Sci. Adv. / GCA 2021, eqs. 1-2; i-Melt):

- Adam-Gibbs:        log eta = Ae + Be / (T Sconf(T)),   Be = (12 - Ae) Tg Sconf(Tg)
  Sconf(T) = Sconf(Tg) + ap ln(T/Tg) + b (T - Tg)  (Cp_conf = ap + b T >= 0 by construction)
- MYEGA:             log eta = Ae + (12 - Ae) (Tg/T) exp[(m/(12 - Ae) - 1)(Tg/T - 1)]
- Avramov-Milchev:   log eta = A + (12 - A) (Tg/T)^(m/(12 - A))
- VFT:               log eta = A + (12 - A)(Tg - T0)/(T - T0),  0 < T0 < Tg
- free volume (Cohen-Grest):
                     log eta = A + 2 B / (T - T0 + sqrt((T - T0)^2 + C T)),
                     B = (12 - A)(Tg - T0 + sqrt((Tg - T0)^2 + C Tg)) / 2
"""

from __future__ import annotations

import torch

R_GAS = 8.314462618  # J/mol/K
SCONF_FLOOR = 1e-2  # J/mol/K; only reached far below Tg, keeps AG finite there


def sconf_at(T, tg, sctg, ap, b):
    """Configurational entropy at T from Sconf(Tg) and Cp_conf(T) = ap + b T (J/mol/K)."""
    s = sctg + ap * torch.log(T / tg) + b * (T - tg)
    return torch.clamp(s, min=SCONF_FLOOR)


def adam_gibbs(T, tg, ae, sctg, ap, b):
    be = (12.0 - ae) * tg * sctg
    return ae + be / (T * sconf_at(T, tg, sctg, ap, b))


def myega(T, tg, ae, m):
    return ae + (12.0 - ae) * (tg / T) * torch.exp((m / (12.0 - ae) - 1.0) * (tg / T - 1.0))


def avramov_milchev(T, tg, a, m):
    return a + (12.0 - a) * (tg / T) ** (m / (12.0 - a))


def vft(T, tg, a, t0):
    return a + (12.0 - a) * (tg - t0) / (T - t0)


def free_volume(T, tg, a, t0, c):
    b = 0.5 * (12.0 - a) * (tg - t0 + torch.sqrt((tg - t0) ** 2 + c * tg))
    return a + 2.0 * b / (T - t0 + torch.sqrt((T - t0) ** 2 + c * T))


def sellmeier(lbd_um, B, C):
    """Refractive index n(lambda) from a 3-term Sellmeier law; B, C are (n, 3), C in um^2."""
    l2 = (lbd_um**2).reshape(-1, 1)
    return torch.sqrt(1.0 + (B * l2 / (l2 - C)).sum(dim=1, keepdim=True))


LAMBDA_D_UM = 0.5893  # sodium D line, where glass refractivities are tabulated


def lorentz_lorenz(lbd_um, R_d, V, B, C):
    """n(lambda) from (n^2 - 1) / (n^2 + 2) = R(lambda) / V (Lorentz-Lorenz): R_d the molar
    refractivity at the sodium D line, V the molar volume (cm3/mol, both (n, 1)); R(lambda)
    disperses as one UV oscillator (pole C[:, 0]), plus the Sellmeier IR term (B, C[:, 2])
    taken relative to the D line, so n_D is exactly the Lorentz-Lorenz value."""
    l2 = (lbd_um**2).reshape(-1, 1)
    d2 = LAMBDA_D_UM**2
    uv = (l2 / (l2 - C[:, 0:1])) / (d2 / (d2 - C[:, 0:1]))
    ir = B[:, 2:3] * (l2 / (l2 - C[:, 2:3]) - d2 / (d2 - C[:, 2:3]))
    r = (R_d / V * uv).clamp(max=0.9)  # r -> 1 is n -> infinity
    return torch.sqrt((1.0 + 2.0 * r) / (1.0 - r) + ir)


EQUATIONS = ("ag", "myega", "am", "vft", "fv")
EQUATION_NAMES = {
    "ag": "Adam-Gibbs",
    "myega": "MYEGA",
    "am": "Avramov-Milchev",
    "vft": "VFT",
    "fv": "free volume",
}
