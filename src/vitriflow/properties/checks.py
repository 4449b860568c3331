"""Start-up checks of the ``properties`` section (torch-free; ``vitriflow.config.load_config``
runs them at DAG time): the systems of each part, the scan and transport schedules, the X-ray
data file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vitriflow.config import ConfigError, data_file

PARTS = ("network", "elastic", "thermal", "transport")


def check_config(section: Mapping[str, Any], settings) -> dict[str, Any]:
    """``{"systems": {part: [system, ...]}, "xray": DataFile}``: the systems each enabled part
    runs on, refusing unknown names; the cooling scan and the transport runs built once so a bad
    schedule stops the run here."""
    from vitriflow.properties.thermal import scan_protocol
    from vitriflow.properties.transport import transport_protocol

    names = list(settings.systems)
    systems = {}
    for part in PARTS:
        cfg = section[part]
        if not cfg["enabled"]:
            systems[part] = []
            continue
        unknown = [s for s in cfg["systems"] if s not in settings.systems]
        if unknown:
            raise ConfigError(f"properties.{part}.systems: {unknown} are not systems of this run; "
                              f"expected some of {names}")
        systems[part] = list(cfg["systems"] or names)
    try:
        if section["thermal"]["enabled"]:
            scan_protocol(section["thermal"])
        if section["transport"]["enabled"]:
            transport_protocol(section["transport"], 1000.0,
                               section["transport"]["green_kubo"]["enabled"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    xray = data_file(section["network"]["xray_form_factors"],
                     "properties.network.xray_form_factors", settings)
    return {"systems": systems, "xray": xray}
