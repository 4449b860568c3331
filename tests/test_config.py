"""Bad configs are refused before any job runs, with one line naming the key and value."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vitriflow.config import (
    STAGE_SECTIONS,
    ConfigError,
    expand_systems,
    load_config,
    validate_section,
)
from vitriflow.structures.ids import structure_seed

REPO = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def with_system(**changes):
    """The demo's core keys with one system ``s``, no stage sections."""
    cfg = {k: v for k, v in copy.deepcopy(DEMO).items() if k not in STAGE_SECTIONS}
    cfg["references"] = {"snapshot": False}  # the shipped subset: no dataset lookups
    cfg["systems"] = [
        {
            "name": "s",
            "compositions": ["SiO2"],
            "atoms_per_cell": 48,
            "potential": "teter",
            "protocol": "demo_classical",
            **changes,
        }
    ]
    return cfg


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"compositions": ["SiO2", "Qq2O"]},
            r"systems\[0\] \(s\)\.compositions\[1\]: unknown element 'Qq'",
        ),
        ({"compositions": [{"SiO2": -10, "Na2O": 110}]}, "negative amount -10"),
        ({"compositions": [{"SiO2": 60, "Na2O": 20}]}, "sum to 80"),
        (
            {"compositions": ["Na2O-3SiO2"], "atoms_per_cell": 7},
            r"systems.0.atoms_per_cell: 7 is less than the minimum of 8",
        ),
        (
            {"compositions": ["Na2O-3SiO2"], "atoms_per_cell": 10},
            r"atoms_per_cell: no cell of 10 atoms",
        ),
        ({"protocol": "nope"}, "unknown protocol 'nope'"),
        ({"potential": "lj"}, r"systems.0.potential: 'lj' is not one of \['sevennet-0'"),
        (
            {"potential_options": {"coulom": "dsf"}},
            r"potential_options: unknown option\(s\) \['coulom'\] for teter",
        ),
        (
            {"potential": "chgnet", "potential_options": {"enable_cueq": True}},
            "unknown option.*for chgnet",
        ),
    ],
)
def test_meaning_errors_name_the_key(changes, message):
    with pytest.raises(ConfigError, match=message):
        load_config(with_system(**changes))


def test_sample_interval_longer_than_the_last_stage_is_refused():
    cfg = copy.deepcopy(DEMO)
    cfg["protocols"]["demo_classical"]["sample_every"] = 250
    with pytest.raises(
        ConfigError,
        match=r"protocols.demo_classical.sample_every: 250 is more "
        r"than the 200 steps of its last stage \('anneal'\)",
    ):
        load_config(cfg)
    cfg["protocols"]["demo_classical"]["sample_every"] = 200  # one frame, at the end of the stage
    load_config(cfg)


def test_empty_grid_is_refused():
    cfg = with_system()
    del cfg["systems"][0]["compositions"]
    cfg["systems"][0]["grid"] = {
        "endmembers": ["Na2O", "SiO2"],
        "step": 0.5,
        "bounds": {"SiO2": [0.6, 0.7]},
    }
    with pytest.raises(ConfigError, match="empty"):
        load_config(cfg)


def test_forced_snapshot_without_its_data_is_refused_and_auto_falls_back(tmp_path):
    """Neither cache, mirror nor download can serve the Materials Project snapshot: a forced
    snapshot is refused at start naming a dataset and how to get it; auto takes the subset."""
    cfg = with_system()
    cfg["data"] = {"mirror": str(tmp_path), "download": False, "cache_dir": str(tmp_path / "cache")}
    cfg["references"] = {"source": "snapshot"}
    with pytest.raises(
        ConfigError,
        match=r"^references.source: 'snapshot' needs the Materials "
        r"Project snapshot: dataset mp_\w+ .* is not available",
    ):
        load_config(cfg)
    cfg["references"] = {"source": "auto"}
    note = load_config(cfg).derived["references"]
    assert note["files"] is None and "the shipped subset serves" in note["note"]


def test_scan_expands_into_batched_systems():
    cfg = {
        "protocols": DEMO["protocols"],
        "scans": [
            {
                "name": "mm",
                "elements": ["Cu", "Zr", "Ni", "Al"],
                "step": 0.1,
                "potential": "sevennet-0",
                "protocol": "paper",
                "compositions_per_job": 18,
                "exclude_pairs": [["Ni", "Al"]],
            }
        ],
    }
    systems = expand_systems(validate_section(cfg, "config"))
    assert list(systems) == ["mm_0000", "mm_0001", "mm_0002"]  # 5 pairs, 2 pairs (18 comps) a job
    assert sum(len(s.compositions()) for s in systems.values()) == 5 * 9
    assert ("Al", "Ni") not in {p for s in systems.values() for p in s.pairs}


def test_structure_seeds_are_stable_and_distinct():
    a = structure_seed(1, "silica", 0, 0)
    assert a == structure_seed(1, "silica", 0, 0)
    assert len({structure_seed(1, "silica", c, r) for c in range(10) for r in range(3)}) == 30


def _dry_run(tmp_path, cfg):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda c: c["systems"][0].update(potential="lj"),
            "systems.0.potential: 'lj' is not one of",
        ),
        (lambda c: c["systems"][0].update(compositions=["SiO2", "Xx2O"]), "unknown element 'Xx'"),
        (
            lambda c: c["systems"][0].update(replicas=0),
            "systems.0.replicas: 0 is less than the minimum",
        ),
        (
            lambda c: c.update(gnn={"systems": ["nope"]}),
            "gnn.systems: ['nope'] are not systems of this run",
        ),
        (
            lambda c: (
                c["systems"].append({**c["systems"][0], "name": "t", "potential": "bks"}),
                c.update(gnn={}),
            ),
            "gnn.systems: the family mixes potentials {'bks': ['t'], 'teter': ['s']}; "
            "expected systems of one potential",
        ),
        (lambda c: c.update(gnn={"target": "viscosity"}), "gnn.target: 'viscosity' is not one of"),
        (
            lambda c: c.update(
                viscosity={
                    "mode": "full",
                    "model": {"task_groups": [{"properties": ["viscositty"]}]},
                }
            ),
            "viscosity.model.task_groups[0].properties[0]: 'viscositty' is not one of",
        ),
        (
            lambda c: c.update(viscosity={"model": {"early_stopping_on": "dens"}}),
            "viscosity.model.early_stopping_on: 'dens' is not one of ['all'",
        ),
        (
            lambda c: c.update(
                viscosity={
                    "model": {
                        "task_groups": [
                            {"properties": ["viscosity", "tg", "sconf_tg", "cp_liquid"]},
                            {
                                "properties": [
                                    "density",
                                    "refractive_index",
                                    "liquidus",
                                    "elastic_modulus",
                                    "cte",
                                    "abbe_number",
                                ],
                                "n_models": 0,
                            },
                        ]
                    }
                }
            ),
            "viscosity.model.task_groups[1].n_models: 0 is less than the minimum of 1",
        ),
        (
            lambda c: c.update(
                viscosity={
                    "model": {
                        "early_stopping_on": "viscosity",
                        "task_groups": [
                            {"properties": ["viscosity", "tg", "sconf_tg", "cp_liquid"]},
                            {
                                "properties": [
                                    "density",
                                    "refractive_index",
                                    "liquidus",
                                    "elastic_modulus",
                                    "cte",
                                    "abbe_number",
                                ]
                            },
                        ],
                    }
                }
            ),
            "viscosity.model.task_groups[1].early_stopping_on: 'viscosity' is not trained "
            "by this group",
        ),
        (
            lambda c: c.update(viscosity={"predict": {"compositions": [{"label": "nothing"}]}}),
            "viscosity.predict.compositions[0] (nothing): row 0 has no oxide content",
        ),
        (
            lambda c: c.update(
                viscosity={
                    "predict": {
                        "compositions": [
                            {"label": "g", "sio2": 70, "na2o": 30},
                            {"label": "g", "sio2": 60, "na2o": 40},
                        ]
                    }
                }
            ),
            "viscosity.predict.compositions: label(s) ['g'] used more than once",
        ),
        (
            lambda c: c.update(analysis={"r_max": 5.01, "dr": 0.02}),
            "r_max=5.01 must be a whole number",
        ),
        (
            lambda c: c.update(analysis={"experimental_fq": "config/confg.yaml"}),
            "analysis.experimental_fq: no file 'confg.yaml' in config; did you mean 'config.yaml'?",
        ),
        (
            lambda c: c.update(dissolution={"table": "tests/data/hamiltn.csv"}),
            "dissolution.table: no file 'hamiltn.csv'",
        ),
        (
            lambda c: c.update(dissolution={"models": ["IV", "Foo"]}),
            "dissolution.models: unknown model 'Foo'",
        ),
        (
            lambda c: c.update(dissolution={"models": ["IV"], "predict": {"model": "V"}}),
            "dissolution.predict.model: 'V' is not among dissolution.models ['IV']",
        ),
        (
            lambda c: c.update(dissolution={"select": "Na2O = 25"}),
            "dissolution.select: 'Na2O = 25' is not a condition",
        ),
        (
            lambda c: c.update(
                references={"source": "snapshot"},
                data={"mirror": "config", "download": False, "cache_dir": "no_cache"},
            ),
            "references.source: 'snapshot' needs the Materials Project snapshot: dataset mp_",
        ),
        (
            lambda c: c["protocols"]["demo_classical"].update(timestep_fs=float("nan")),
            "protocols.demo_classical.timestep_fs: nan is not a finite number",
        ),
        (
            lambda c: c["systems"][0].update(atoms_per_cell=9),
            "a cell of 9 atoms holds only 3 formula unit(s) of SiO2; expected at least 4",
        ),
    ],
)
def test_snakemake_refuses_bad_config_in_one_line(tmp_path, mutate, message):
    cfg = with_system()
    mutate(cfg)
    proc = _dry_run(tmp_path, cfg)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if "vitriflow config error" in ln]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    assert not (REPO / "results" / "structures" / "s").exists()


@pytest.mark.parametrize(
    "name",
    [
        "dft_validation",
        "gnn_validation_classical",
        "pcf_validation",
        "pcf_validation_classical",
        "viscosity_full",
    ],
)
def test_shipped_validation_configs_build_their_dag(name):
    """The documented command, target first: `--configfile` takes several files, so a target
    written after it would be read as a second config file."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--cores",
            "1",
            "results/report/index.html",
            "--configfile",
            f"config/{name}.yaml",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    header = (REPO / "config" / f"{name}.yaml").read_text()
    assert f"--configfile config/{name}.yaml\n" in header


def test_classical_potential_options_match_the_model():
    """The registry's typed options of every classical potential are the model's real keywords."""
    import inspect

    from vitriflow.potentials.classical import ClassicalPairModel
    from vitriflow.potentials.registry import CLASSICAL, REGISTRY

    params = inspect.signature(ClassicalPairModel.__init__).parameters.values()
    kw = {p.name for p in params if p.kind is p.KEYWORD_ONLY} - {
        "device",
        "dtype",
        "compute_forces",
        "compute_stress",
    }
    assert CLASSICAL and all(
        set(REGISTRY[name].options) - {"parameters"} == kw for name in CLASSICAL
    )
    assert set(REGISTRY["buckingham"].options) == kw | {"parameters"}  # the fitted-set file


def test_potential_names_come_from_the_registry():
    """The schema's enum is filled from the registry: one place names the potentials."""
    from vitriflow.config import load_schema
    from vitriflow.potentials.registry import NAMES

    assert load_schema("config")["$defs"]["potential"]["enum"] == list(NAMES)
    raw = (REPO / "src/vitriflow/schemas/config.schema.yaml").read_text()
    assert "teter" not in raw and "sevennet-0" not in raw


def test_defaults_are_filled_from_the_schema_and_frozen():
    cfg = load_config(with_system()).config
    assert cfg["systems"][0]["replicas"] == 1  # $ref'd default (common_system) filled too
    assert cfg["protocols"]["demo_classical"]["guard"]["min_distance_scale"] == 0.35
    with pytest.raises(TypeError, match="read-only"):
        cfg["seed"] = 1
    with pytest.raises(TypeError, match="read-only"):
        cfg["protocols"]["demo_classical"]["guard"]["min_distance_scale"] = 1.0


@pytest.mark.parametrize(
    "path, value, message",
    [
        (
            ("protocols", "demo_classical", "timestep_fs"),
            float("nan"),
            "timestep_fs: nan is not a finite number",
        ),
        (
            ("protocols", "demo_classical", "stages", 0, "temperature_K"),
            float("inf"),
            r"stages.0.temperature_K: inf is greater than the maximum of 20000",
        ),
        (
            ("packing", "density_scale"),
            float("nan"),
            "packing.density_scale: nan is not a finite number",
        ),
    ],
)
def test_non_finite_numbers_are_refused(path, value, message):
    cfg = with_system()
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message):
        load_config(cfg)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"cutoff": "eight"}, r"potential_options.cutoff: 'eight' is not of type 'number'"),
        ({"cutoff": -8}, r"potential_options.cutoff: -8 is less than or equal to the minimum of 0"),
        ({"coulomb": "ewald"}, r"potential_options.coulomb: 'ewald' is not one of"),
    ],
)
def test_potential_options_are_typed(options, message):
    with pytest.raises(ConfigError, match=message):
        load_config(with_system(potential_options=options))


def test_data_file_of_an_absent_data_set_is_optional(tmp_path):
    """A fresh clone has no ../shared: its data files are skipped with a reason, not refused."""
    from vitriflow.config import optional_data_file

    assert optional_data_file(REPO / "config" / "config.yaml", "k") == ""
    why = optional_data_file(tmp_path / "not_installed" / "fq.csv", "analysis.experimental_fq")
    assert why.startswith("analysis.experimental_fq:") and "folder" in why
