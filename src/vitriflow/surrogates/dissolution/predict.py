"""Model cards (a fitted model with its training range) and predictions for user compositions,
each row flagged ok / out_of_range / refused with the reason."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitriflow.surrogates.dissolution.data import (
    PH_RANGE,
    RATE_UNIT,
    DissolutionDataError,
    composition_descriptors,
)
from vitriflow.surrogates.dissolution.models import model_from_card, rrmse
from vitriflow.surrogates.dissolution.topology import TopologyError, canonical_oxides

MODELS_JSON = "results/surrogates/dissolution/models.json"
_EXPECTED = f"expected the models.json written by dissolution_evaluate ({MODELS_JSON})"
_PREDICTED_DESCRIPTORS = ("n_c", "BS", "BB", "n_c_Si", "n_c_Al", "f_NBO", "n_SiOSi", "pH_acid",
                          "pH_base")


def training_range(frame: pd.DataFrame, features: Iterable[str]) -> dict[str, list[float]]:
    cols = sorted({*features, "pH", *[c for c in frame if c.startswith("x_")]})
    return {c: [float(frame[c].min()), float(frame[c].max())] for c in cols}


def model_card(model, frame: pd.DataFrame, curve: pd.DataFrame, ph_measure: str) -> dict[str, Any]:
    card = model.to_dict()
    card.update({
        "ph_measure": ph_measure, "target_unit": f"log10({RATE_UNIT})",
        "training_range": training_range(frame, model.spec.features),
        "training_glasses": sorted(frame["glass"].unique().tolist()),
        "n_train": len(frame), "cv_curve": curve.to_dict("records"),
        "train_rrmse": rrmse(model.predict(frame), frame["log10_rate"]),
    })
    return card


def check_composition(composition: Mapping[str, float], where: str) -> None:
    """Amounts as the systems' compositions take them (``vitriflow.composition``): mol % summing
    to 100 or mole fractions summing to 1, non-negative, real chemical formulas; one line naming
    ``where`` otherwise. Oxides outside the constraint rules pass here: prediction marks their
    rows refused, with the reason."""
    from vitriflow.composition import parse_composition

    parse_composition(canonical_oxides(composition, where), where)


def predict_inputs(card: Mapping[str, Any], inputs: Sequence[Mapping[str, Any]],
                   tolerance: float = 1e-9) -> pd.DataFrame:
    """Rates for user compositions/pH values; each row says ok / out_of_range / refused and
    why."""
    model = model_from_card(card)
    rng = card["training_range"]
    rows = []
    for i, item in enumerate(inputs):
        label = str(item.get("label", f"input{i}"))  # label is optional
        comp = item.get("composition")
        phs = np.atleast_1d(np.asarray(item.get("pH", []), dtype=float))
        if not isinstance(comp, Mapping) or not len(phs):
            raise DissolutionDataError(f"dissolution.predict.inputs[{i}]: expected 'composition' "
                                       "(oxide: mol) and 'pH' (list)")
        base = {"label": label, "composition": json.dumps(dict(comp), sort_keys=True),
                "model": model.spec.name}
        try:
            desc = composition_descriptors(comp, phs, f"dissolution.predict.inputs[{i}] ({label})")
        except TopologyError as exc:
            rows += [{**base, "pH": p, "status": "refused", "reason": str(exc)} for p in phs]
            continue
        unknown_ox = [c for c in desc
                      if c.startswith("x_") and c not in rng and desc[c].iloc[0] > 0]
        pred = model.predict(desc)
        for j, p in enumerate(phs):
            if not PH_RANGE[0] <= p <= PH_RANGE[1]:  # also NaN
                rows.append({**base, "pH": float(p), "status": "refused",
                             "reason": f"pH {p} outside {PH_RANGE[0]}-{PH_RANGE[1]}"})
                continue
            reasons = [f"{c[2:]} not in the training glasses" for c in unknown_ox]
            for c, (lo, hi) in rng.items():
                v = float(desc[c].iloc[j]) if c in desc else 0.0
                if v < lo - tolerance or v > hi + tolerance:
                    reasons.append(f"{c}={v:.4g} outside training [{lo:.4g}, {hi:.4g}]")
            rows.append({**base, "pH": float(p), "status": "out_of_range" if reasons else "ok",
                         "reason": "; ".join(reasons),
                         "log10_rate": float(pred[j]), "rate_mol_SiO2_cm2_s": float(10 ** pred[j]),
                         **{k: float(desc[k].iloc[j]) for k in _PREDICTED_DESCRIPTORS}})
    return pd.DataFrame(rows)


def read_model_cards(path: str | Path) -> dict[str, Any]:
    """The model cards of a models.json written by dissolution_evaluate; any other file is
    refused in one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise DissolutionDataError(f"{path}: file not found; {_EXPECTED}")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise DissolutionDataError(f"{path}: not JSON; {_EXPECTED}") from None
    cards = data.get("models", data) if isinstance(data, dict) else None  # also a bare {key: card}
    if not cards or not isinstance(cards, dict) or not all(
            isinstance(c, dict) and "training_range" in c for c in cards.values()):
        raise DissolutionDataError(f"{path}: no dissolution model cards; {_EXPECTED}")
    return cards


def card_for(cards: Mapping[str, Any], model: str, ph_measure: str, source: str) -> Mapping:
    """The card of ``model`` fitted on ``ph_measure``; one line listing the fitted ones
    otherwise."""
    key = f"{model}@{ph_measure}"
    if key not in cards:
        raise DissolutionDataError(
            f"dissolution.predict: model {model!r} with ph_measure {ph_measure!r} is not in "
            f"{source}; fitted: {', '.join(cards)} (add it to dissolution.models / ph_measures)")
    return cards[key]


def predict_from_file(path: str | Path, key: str,
                      inputs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """``predict_inputs`` with card ``key`` of the models.json at ``path``; a damaged card is
    one line naming the file and the key."""
    cards = read_model_cards(path)
    if key not in cards:
        raise DissolutionDataError(f"--model {key!r} not in {path}; available: {', '.join(cards)}")
    try:
        return predict_inputs(cards[key], inputs)
    except DissolutionDataError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        why = (str(exc).strip().splitlines() or [""])[0]
        raise DissolutionDataError(f"{path}: model card {key!r} is damaged ({type(exc).__name__}: "
                                   f"{why}); {_EXPECTED}") from None
