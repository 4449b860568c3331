"""Chemistry classes named as in Aykol et al. (2023), Table 1, and the paper's per-class MAE.

A composition belongs to the class of its most electronegative *anion-forming* element
(``F`` -> fluorides, ``O`` -> oxides, ... ``Si`` -> silicides) when at least one other element is
present; compositions without such an element are ``alloys``; a single element is ``elements``.
The priority follows Pauling electronegativity (pymatgen ``Element.X``), so Ge-Te is a telluride
and B-Si a boride, which is how binary nonmetal-nonmetal systems are usually named.
Anions absent from Table 1 (Br, I, Se, H, As) get their own -ide names and no paper value.
"""

from __future__ import annotations

from collections.abc import Mapping

from pymatgen.core import Composition, Element

#: anion-forming element -> class name
ANION_CLASSES: dict[str, str] = {
    "F": "fluorides", "O": "oxides", "Cl": "chlorides", "N": "nitrides", "Br": "bromides",
    "I": "iodides", "S": "sulfides", "Se": "selenides", "C": "carbides", "H": "hydrides",
    "P": "phosphides", "As": "arsenides", "Te": "tellurides", "Sb": "antimonides",
    "B": "borides", "Ge": "germanides", "Si": "silicides",
}

#: Aykol et al. 2023, Table 1: MAE of GNN vs DFT amorphous energies (meV/atom), ~10,000 structures
PAPER_MAE_MEV: dict[str, float] = {
    "carbides": 40, "nitrides": 33, "oxides": 45, "sulfides": 38, "phosphides": 38,
    "borides": 41, "silicides": 27, "germanides": 35, "antimonides": 37, "tellurides": 42,
    "chlorides": 44, "fluorides": 44, "alloys": 41, "overall": 38,
}


def classify(composition: str | Mapping[str, float] | Composition) -> str:
    """Chemistry class of a composition (formula string, element->amount mapping or pymatgen)."""
    comp = composition if isinstance(composition, Composition) else Composition(composition)
    elements = [el.symbol for el, amt in comp.items() if amt > 0]
    if not elements:
        raise ValueError(f"composition {composition!r}: no elements")
    if len(elements) == 1:
        return "elements"
    anions = [el for el in elements if el in ANION_CLASSES]
    if not anions:
        return "alloys"
    anion = max(anions, key=lambda el: (Element(el).X, el))
    return ANION_CLASSES[anion]
