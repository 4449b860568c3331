# The config, validated and checked once (vitriflow.config.load_config), the run's systems, and
# the target lists every stage appends to.
import sys

from vitriflow.config import ConfigError, load_config

try:
    SETTINGS = load_config(config)
except ConfigError as exc:
    sys.exit(f"vitriflow config error: {exc}")

SYSTEMS = SETTINGS.systems
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
    return SETTINGS.protocol(wildcards.system)


def elements_of_potential(potential):
    """Sorted elements of every system that uses ``potential`` (for its elemental references)."""
    return sorted({el for s in SYSTEMS.values() if s.potential == potential for el in s.elements()})


def potential_files(wildcards):
    """The parameter file of a system whose potential reads one (a fitted Buckingham set): an
    input of its MD and property jobs, so a fit of this run comes first."""
    options = SYSTEMS[wildcards.system].potential_options or {}
    return [options["parameters"]] if "parameters" in options else []
