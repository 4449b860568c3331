"""Model specs: which descriptors go in, which target, which estimator (Liu et al. Models I-IV,
thesis Eqs. 5-8..5-15, and the vitriflow extensions), and user specs from ``custom_models``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vitriflow.surrogates.dissolution.data import DissolutionDataError

ESTIMATORS = {
    "poly": "least-squares polynomial, degree by grouped CV (thesis)",
    "ridge": "ridge polynomial, degree and penalty by grouped CV (vitriflow extension)",
    "gp": "ANOVA Gaussian process, hyper-parameters by marginal likelihood (vitriflow extension)",
    "mixed": "ridge polynomial plus per-glass random effects (intercept, acid slope), penalties "
             "by grouped CV (vitriflow extension)",
    "ensemble": "mean of the member models' predictions, each fitted with its own selection "
                "(vitriflow extension)",
}


@dataclass(frozen=True)
class ModelSpec:
    """A named model: which descriptors go in and whether the target is the rate or its log10."""

    name: str
    features: tuple[str, ...]
    target: str = "log10_rate"  # or "rate"
    description: str = ""
    estimator: str = "poly"  # "poly" (thesis); "ridge", "gp", "mixed", "ensemble" (extensions)
    members: tuple[ModelSpec, ...] = ()  # ensemble only: the member specs

    def __post_init__(self):
        if self.estimator not in ESTIMATORS:
            raise DissolutionDataError(f"model {self.name}: estimator {self.estimator!r}, "
                                       f"expected one of {list(ESTIMATORS)}")
        if (self.estimator == "ensemble") != bool(self.members):
            raise DissolutionDataError(
                f"model {self.name}: 'members' (a list of model names) goes with estimator "
                f"'ensemble' and only with it; got estimator {self.estimator!r}, members "
                f"{[m.name for m in self.members]}"
            )
        if self.estimator == "mixed" and self.target != "log10_rate":
            raise DissolutionDataError(
                f"model {self.name}: estimator 'mixed' needs target log10_rate")
        if self.estimator == "gp" and (self.target != "log10_rate" or len(self.features) < 2
                                       or self.features[0] not in ("pH", "pH_acid")):
            raise DissolutionDataError(
                f"model {self.name}: estimator 'gp' needs target log10_rate and features "
                f"[pH or pH_acid(, pH_base), composition descriptor(s)], got {list(self.features)}"
            )
        if self.target not in ("rate", "log10_rate"):
            raise DissolutionDataError(
                f"model {self.name}: target {self.target!r}, expected 'rate' or 'log10_rate'"
            )
        if not self.features:
            raise DissolutionDataError(f"model {self.name}: empty feature list")

    def card(self) -> dict:
        """The spec part of a model card."""
        return {"name": self.name, "features": list(self.features), "target": self.target,
                "description": self.description}


_PH2 = ("pH_acid", "pH_base")
BUILTIN_MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("I", ("pH", "x_Na2O", "x_Al2O3"), "rate",
                  "blind: rate = f(pH, Na2O, Al2O3), Eq. 5-8"),
        ModelSpec("II", ("pH", "x_Na2O", "x_Al2O3"), "log10_rate",
                  "log rate = f(pH, Na2O, Al2O3), Eq. 5-9"),
        ModelSpec("III", (*_PH2, "x_Na2O", "x_Al2O3"), "log10_rate",
                  "log rate = f(pH_acid, pH_base, Na2O, Al2O3), Eq. 5-10"),
        ModelSpec("IV", (*_PH2, "n_c", "modifier_frac"), "log10_rate",
                  "topology-informed: log rate = f(pH_acid, pH_base, n_c, Na2O), Eq. 5-11"),
        ModelSpec("IV-a", (*_PH2, "BS", "BB"), "log10_rate",
                  "log rate = f(pH_acid, pH_base, BS, BB), Eq. 5-14"),
        ModelSpec("IV-b", (*_PH2, "n_c_Si", "n_c_Al"), "log10_rate",
                  "log rate = f(pH_acid, pH_base, n_c_Si, n_c_Al), Eq. 5-15"),
        ModelSpec("V", (*_PH2, "n_SiOSi", "f_NBO"), "log10_rate",
                  "vitriflow extension: Si-O-Si links per Si (Al avoidance) and NBO fraction"),
        # vitriflow extensions: same descriptors, other estimators
        ModelSpec("III-ridge", (*_PH2, "x_Na2O", "x_Al2O3"), "log10_rate",
                  "vitriflow extension: Model III descriptors, ridge polynomial", "ridge"),
        ModelSpec("IV-ridge", (*_PH2, "n_c", "modifier_frac"), "log10_rate",
                  "vitriflow extension: Model IV descriptors, ridge polynomial", "ridge"),
        ModelSpec("V-ridge", (*_PH2, "n_SiOSi", "f_NBO"), "log10_rate",
                  "vitriflow extension: Model V descriptors, ridge polynomial", "ridge"),
        ModelSpec("III-GP", ("pH", "x_Na2O", "x_Al2O3"), "log10_rate",
                  "vitriflow extension: ANOVA GP on pH and Na2O, Al2O3", "gp"),
        ModelSpec("IV-GP", ("pH", "n_c", "modifier_frac"), "log10_rate",
                  "vitriflow extension: ANOVA GP on pH and n_c, modifier fraction", "gp"),
        ModelSpec("V-GP", ("pH", "n_SiOSi", "f_NBO"), "log10_rate",
                  "vitriflow extension: ANOVA GP on pH and n_SiOSi, f_NBO", "gp"),
        ModelSpec("IV-mixed", (*_PH2, "n_c", "modifier_frac"), "log10_rate",
                  "vitriflow extension: Model IV ridge polynomial + per-glass intercept and acid "
                  "slope", "mixed"),
        ModelSpec("V-mixed", (*_PH2, "n_SiOSi", "f_NBO"), "log10_rate",
                  "vitriflow extension: Model V ridge polynomial + per-glass intercept and acid "
                  "slope", "mixed"),
    )
}
# Ensembles: one descriptor set, the three vitriflow estimators, equal weights (no weights are
# fitted, so nothing is tuned on test rows).
for _d in ("IV", "V"):
    _m = tuple(BUILTIN_MODELS[f"{_d}-{e}"] for e in ("ridge", "GP", "mixed"))
    BUILTIN_MODELS[f"{_d}-ens"] = ModelSpec(
        f"{_d}-ens", BUILTIN_MODELS[f"{_d}-ridge"].features, "log10_rate",
        f"vitriflow extension: mean of {', '.join(m.name for m in _m)}", "ensemble", _m)


def resolve_models(names: Sequence[str],
                   custom: Mapping[str, Mapping] | None = None) -> list[ModelSpec]:
    """Built-in specs by name plus user specs ``{name: {features: [...], target: ...}}``
    (entries of the schema-defaulted ``custom_models``: target, description and estimator are
    filled in)."""
    custom = dict(custom or {})
    specs = []
    for name in names:
        if name in custom:
            c = custom[name]
            rest = {k: v for k, v in custom.items() if k != name}
            members = tuple(resolve_models(c.get("members", ()), rest))  # optional: no default
            features = tuple(c.get("features") or sorted({f for m in members for f in m.features}))
            specs.append(ModelSpec(name, features, c["target"], c["description"], c["estimator"],
                                   members))
        elif name in BUILTIN_MODELS:
            specs.append(BUILTIN_MODELS[name])
        else:
            raise DissolutionDataError(
                f"dissolution.models: unknown model {name!r}; built-in: "
                f"{', '.join(BUILTIN_MODELS)}; or define it under dissolution.custom_models"
            )
    return specs
