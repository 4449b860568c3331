"""Report section 45: the glass properties and how they compare with measured glasses
(rule properties_report)."""


def main(smk) -> None:
    import pandas as pd

    from vitriflow.io import read_table
    from vitriflow.properties.report import write_properties_section
    from vitriflow.runtime import script_logger

    log = script_logger("properties", smk.log[0])
    i, cfg = smk.input, smk.params.cfg

    def cat(name):
        files = list(i[name]) if name in i.keys() else []
        frames = [read_table(f)[0] for f in files]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    tables = {name: read_table(i[name])[0] for name in ("parity", "tg_rank", "nbo", "summary")}
    tables.update(thermal=cat("thermal"), curves=cat("thermal_curves"), transport=cat("transport"))
    targets = {"density": cfg["density_target_pct"], "modulus": cfg["modulus_target_pct"],
               "tg_rho": cfg["tg_min_spearman"]}
    write_properties_section(smk.output[0], tables, targets)
    log.info("wrote %s", smk.output[0])


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
