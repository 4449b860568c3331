"""Bad input is refused in one line, never a traceback, never accepted as nonsense.

Property-based (hypothesis): valid configs, tables and files are mutated by type, sign, NaN/inf,
size, unknown names, truncation and flipped bits; each case must either be accepted (and then be
valid) or be refused with one line naming what is wrong. The normal profile keeps the suite
short; ``benchmarks/fuzz.py`` runs the same properties with many more cases.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vitriflow.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
CASES = int(os.environ.get("VITRIFLOW_FUZZ_CASES", "60"))
FUZZ = settings(max_examples=CASES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# values a user could type where another was expected
WEIRD = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -1, 0, -0.5, 1e12, 10**9, "", "eight", "1e6",
                     None, True, [], {}, [1, 2, 3], {"x": 1}, "../nowhere/file.csv", "Xx2O",
                     "O-Xx"]),
    st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)


def _paths(node, prefix=()):
    """Every (path, value) of a nested config, lists included."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


BASE = {k: v for k, v in DEMO.items() if k not in ("viscosity", "pcf", "gnn")}  # fast checks
PATHS = [p for p, _ in _paths(BASE) if p]


def _set(cfg, path, value):
    node = cfg
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value


_DELETE = object()


def _one_line_refusal(exc: BaseException) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    return msg


@FUZZ
@given(path=st.sampled_from(PATHS), value=st.one_of(WEIRD, st.just(_DELETE)),
       extra=st.sampled_from([None, "typo_key"]))
def test_mutated_configs_are_accepted_valid_or_refused_in_one_line(path, value, extra, monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    cfg = copy.deepcopy(BASE)
    cfg["data"] = {"download": False}  # no network probes
    _set(cfg, path, value)
    if extra:
        _set(cfg, (*path[:-1], extra), 1) if isinstance(_parent(cfg, path), dict) else None
    try:
        settings_ = load_config(cfg)
    except ConfigError as exc:
        _one_line_refusal(exc)
        return
    # accepted: then it is physically sane
    for name, proto in settings_.config["protocols"].items():
        for st_ in proto["stages"]:
            t = st_["temperature_K"]
            for v in (t if isinstance(t, tuple) else (t,)):
                assert 0 < v <= 20000 and math.isfinite(v), (name, t)
            assert 0 <= st_["steps"] <= 10**8
    for spec in settings_.systems.values():
        assert 1 <= spec.replicas <= 10**4 and spec.atoms_per_cell >= 8
    assert 0.8 <= settings_.config["packing"]["density_scale"] <= 2.0


def _parent(cfg, path):
    node = cfg
    for key in path[:-1]:
        node = node[key]
    return node


# ----------------------------------------------------------------------------- tables
def _hamilton_like() -> pd.DataFrame:
    rows = []
    for k, (na, al) in enumerate([(25, 0), (25, 5), (25, 10), (12.5, 12.5), (20, 10), (25, 15)]):
        for j, ph in enumerate([1.5, 4, 7, 10, 12]):
            rows.append({"Na2O_mol_pct": na, "Al2O3_mol_pct": al, "SiO2_mol_pct": 100 - na - al,
                         "pH_initial": ph, "pH_at_time_t": ph + 0.1,
                         "log10_QSiO2_mol_SiO2_per_cm2_per_s":
                             -12 - 0.1 * k + 0.05 * (ph - 7) ** 2 + 0.01 * j})
    return pd.DataFrame(rows)


TABLE_MUTATIONS = st.sampled_from(["drop", "text", "nan", "negative", "truncate", "binary", "empty",
                                   "header", "inf", "duplicate", "none"])


@FUZZ
@given(kind=TABLE_MUTATIONS, column=st.sampled_from(list(_hamilton_like().columns)),
       row=st.integers(0, 29), cut=st.integers(1, 2000))
def test_mutated_dissolution_tables_are_refused_in_one_line(tmp_path, kind, column, row, cut):
    from vitriflow.config import with_defaults
    from vitriflow.surrogates.dissolution.checks import check_config

    df = _hamilton_like()
    path = tmp_path / "rates.csv"
    if kind == "drop":
        df = df.drop(columns=column)
    elif kind in ("text", "nan", "negative", "inf"):
        df[column] = df[column].astype(object)
        df.loc[row, column] = {"text": "fast", "nan": math.nan, "negative": -5,
                               "inf": math.inf}[kind]
    elif kind == "duplicate":
        df = pd.concat([df, df.iloc[[row]]])
    raw = df.to_csv(index=False).encode()
    raw = {"truncate": raw[:cut], "binary": bytes(range(256)) * 4, "empty": b"",
           "header": raw.split(b"\n")[0] + b"\n"}.get(kind, raw)
    path.write_bytes(raw)
    section = with_defaults("dissolution", {"table": str(path), "models": ["IV"], "n_splits": 2,
                                            "extrapolation": {"enabled": False}})
    run = SimpleNamespace(
        config={"data": {"cache_dir": str(tmp_path), "mirror": None, "download": False}},
        systems={})
    try:
        out = check_config(section, run)
    except ValueError as exc:
        assert _one_line_refusal(exc).startswith("dissolution.")
        return
    assert out["rows"] and out["rows"] > 0 and out["skip_reason"] == ""


# ----------------------------------------------------------------------------- model files
_MODELS: dict[str, Path] = {}


def _saved_models(root: Path) -> dict[str, Path]:
    """A tiny viscosity surrogate and a tiny GNN, each saved once per test session."""
    if not _MODELS:
        import numpy as np
        from ase import Atoms
        from test_viscosity import _synthetic_table  # tests/ is on sys.path

        from vitriflow.surrogates.gnn.model import GNNRegressor
        from vitriflow.surrogates.viscosity import ViscositySurrogate

        root.mkdir(parents=True, exist_ok=True)
        ViscositySurrogate(n_models=1, hidden=8, layers=1, max_epochs=2, batch_size=0).fit(
            _synthetic_table(n_comp=12)).save(root / "viscosity.pt")
        rng = np.random.default_rng(0)
        cells = [Atoms(["Si"] * n + ["O"] * (12 - n), positions=rng.uniform(0, 5, (12, 3)),
                       cell=[5, 5, 5], pbc=True) for n in (3, 4, 5, 6)]
        GNNRegressor(cutoff_A=3.0, n_rbf=4, hidden=4, layers=1, epochs=2, batch_size=4,
                     n_models=1, seed=0).fit(cells, [-7.0, -7.1, -6.0, -6.1]).save(
            root / "gnn.pt", target="energy_per_atom_eV")
        cells[0].write(root / "cells.extxyz")
        _MODELS.update(viscosity=root / "viscosity.pt", gnn=root / "gnn.pt",
                       cells=root / "cells.extxyz")
    return _MODELS


@FUZZ
@given(kind=st.sampled_from(["viscosity", "gnn"]),
       damage=st.sampled_from(["truncate", "flip", "empty", "text"]),
       where=st.floats(0.0, 0.999), bit=st.integers(0, 7))
def test_damaged_model_files_are_named_in_one_line(tmp_path_factory, kind, damage, where, bit,
                                                   capsys):
    """``vitriflow <stage> predict`` on a cut, bit-flipped, empty or foreign model file: either
    the damage missed everything the model needs (a prediction is printed), or one line names
    the file; never a traceback."""
    from vitriflow import cli

    models = _saved_models(tmp_path_factory.getbasetemp() / "fuzz_models")
    raw = bytearray(models[kind].read_bytes())
    at = int(where * len(raw))
    if damage == "truncate":
        raw = raw[:at]
    elif damage == "flip":
        raw[at] ^= 1 << bit
    elif damage == "empty":
        raw = bytearray()
    else:
        raw = bytearray(b"model: not really\n")
    path = tmp_path_factory.mktemp("damaged") / f"{kind}.pt"
    path.write_bytes(bytes(raw))
    args = (["viscosity", "predict", "--model", str(path), "--composition", "SiO2=75,Na2O=25",
             "-T", "1200"] if kind == "viscosity"
            else ["gnn", "predict", "--model", str(path), str(models["cells"])])
    try:
        code = cli.main(args)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    if code:
        lines = [ln for ln in err.strip().splitlines() if ln]
        assert len(lines) == 1 and str(path) in lines[0], err
