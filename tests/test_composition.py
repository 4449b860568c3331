import pytest

from vitriflow.composition import (
    CompositionError,
    cell_stoichiometry,
    composition_grid,
    parse_composition,
)


@pytest.mark.parametrize("spec", ["Na2O-3SiO2", "(Na2O)0.25(SiO2)0.75", {"SiO2": 75, "Na2O": 25},
                                  {"SiO2": 0.75, "Na2O": 0.25}])
def test_equivalent_inputs_normalise_to_the_same_mixture(spec):
    comp = parse_composition(spec)
    assert comp.fractions == pytest.approx({"Na2O": 0.25, "SiO2": 0.75})
    assert comp.element_fractions() == pytest.approx({"Na": 2 / 12, "O": 7 / 12, "Si": 3 / 12})
    assert comp.is_oxide_mixture()


def test_single_formula_is_one_unit():
    comp = parse_composition("Ti2O3")
    assert comp.fractions == {"Ti2O3": 1.0}
    assert comp.reduced_formula == "Ti2O3"
    assert cell_stoichiometry(comp, 100) == {"O": 60, "Ti": 40}


@pytest.mark.parametrize("bad, message", [
    ("Xx2O3", "unknown element 'Xx'"),
    ({"SiO2": -5, "Na2O": 105}, "negative amount"),
    ({"SiO2": 50, "Na2O": 20}, "sum to 70"),
    ("(Na2O)0.25 SiO2", "cannot read"),
    ("", "expected a formula"),
    ("Na2O-3Si02", "'Si02' has a count starting with 0"),  # digit zero: pymatgen would read Si
    ("Na2O.3SiO2", "mixes units with a space or '.'"),  # one formula, Na2SiO2.3, to pymatgen
    ("Na2O 3SiO2", "mixes units with a space or '.'"),
    ("0Na2O-SiO2", "zero amount of Na2O in '0Na2O-SiO2'"),  # was blamed on atoms_per_cell
])
def test_bad_compositions_are_refused_with_the_value_named(bad, message):
    with pytest.raises(CompositionError, match=message):
        parse_composition(bad, where="systems[0].compositions[0]")


def test_cell_keeps_whole_oxide_units_so_glasses_stay_neutral():
    counts = cell_stoichiometry(parse_composition("Na2O-3SiO2"), 100)
    assert counts == {"Na": 16, "O": 56, "Si": 24}
    charge = counts["Na"] * 1 + counts["Si"] * 4 - counts["O"] * 2
    assert charge == 0


def test_cell_too_small_for_formula_is_refused():
    with pytest.raises(CompositionError, match="atoms_per_cell: no cell of 5 atoms"):
        cell_stoichiometry(parse_composition("Na2O-3SiO2"), 5)


def test_binary_grid_has_nine_interior_points_at_ten_percent():
    grid = composition_grid(["Cu", "Zr"], 0.1)
    assert len(grid) == 9
    assert grid[0].fractions == pytest.approx({"Cu": 0.9, "Zr": 0.1})
    assert cell_stoichiometry(grid[2], 100) == {"Cu": 70, "Zr": 30}


def test_ternary_grid_with_bounds_and_empty_grid_error():
    grid = composition_grid(["Na2O", "Al2O3", "SiO2"], 0.1, bounds={"SiO2": [0.7, 0.8]})
    assert all(0.7 - 1e-9 <= g.fractions["SiO2"] <= 0.8 + 1e-9 for g in grid)
    with pytest.raises(CompositionError, match="empty"):
        composition_grid(["Na2O", "SiO2"], 0.5, bounds={"SiO2": [0.6, 0.7]})
    with pytest.raises(CompositionError, match="1/step must be an integer"):
        composition_grid(["Na2O", "SiO2"], 0.3)
