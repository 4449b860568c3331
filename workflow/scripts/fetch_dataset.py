"""Fetch one registry dataset into the cache: a mirror copy or a pooch download, checked
against its sha256 (rule fetch_dataset)."""


def main(smk) -> None:
    from pathlib import Path

    from vitriflow.datasets import DatasetError, fetch, load_registry
    from vitriflow.runtime import script_logger

    log = script_logger("fetch_dataset", smk.log[0])
    key, out = smk.wildcards.dataset, Path(smk.output[0])
    # The mirror is read from the config here, not declared as a param: a changed mirror path
    # must not make Snakemake delete and re-fetch files that are already verified.
    mirror = (smk.config.get("data") or {}).get("mirror")
    try:
        expected = load_registry()[key].file
        if out.name != expected:
            raise DatasetError(
                f"dataset {key}: the registry's file is {expected!r}, not {out.name!r}")
        path = fetch(key, cache_dir=out.parent.parent, mirror=mirror)
    except DatasetError as exc:
        log.error("%s", exc)
        raise SystemExit(f"vitriflow dataset error: {exc}") from None
    log.info("dataset %s ready at %s", key, path)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
