# Config validation, system expansion and the target lists every stage appends to.
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from vitriflow.composition import CompositionError
from vitriflow.config import ConfigError, check_config, optional_data_file


def _one_line_schema_error(exc, where):
    """Turn snakemake's schema WorkflowError into one line naming the key and the problem."""
    cause = exc.__cause__ or exc.__context__
    if hasattr(cause, "absolute_path") and hasattr(cause, "message"):
        key = ".".join(str(p) for p in cause.absolute_path) or "(top level)"
        return f"vitriflow config error: {where}{key}: {cause.message}"
    message = " ".join(str(exc).split())
    return f"vitriflow config error: {where}{message}"


def _validate(data, schema, where=""):
    try:
        validate(data, schema=schema)
    except WorkflowError as exc:
        sys.exit(_one_line_schema_error(exc, where))


_validate(config, "../schemas/config.schema.yaml")
for _stage in ("analysis", "dft", "viscosity", "dissolution", "pcf", "gnn"):
    if _stage in config:
        _validate(config[_stage], f"../schemas/{_stage}.schema.yaml", where=f"{_stage}.")

try:
    SYSTEMS = check_config(config, base_dir=".", deep=not config.get("scans"))
except (ConfigError, CompositionError) as exc:
    sys.exit(f"vitriflow config error: {exc}")

SYSTEM_NAMES = list(SYSTEMS)
# Stages append their report fragment (results/report/sections/NN_name.html) and final outputs.
REPORT_SECTIONS = []
STAGE_TARGETS = []


wildcard_constraints:
    system="[A-Za-z0-9_]+",
    potential="[a-z0-9-]+",


def system_spec(wildcards):
    return SYSTEMS[wildcards.system]


def protocol_of(wildcards):
    return config["protocols"][SYSTEMS[wildcards.system].protocol]


def elements_of_potential(potential):
    """Sorted elements of every system that uses ``potential`` (for its elemental references)."""
    return sorted({el for s in SYSTEMS.values() if s.potential == potential for el in s.elements()})
