"""Stepwise NPT cooling scan of one system's glasses: V(T), H(T), Tg, CTE; resumable
(rule properties_thermal)."""


def main(smk) -> None:
    import time

    from vitriflow.io import provenance, read_structures, write_table
    from vitriflow.properties.stage import thermal_job
    from vitriflow.runtime import load_system_model, script_logger

    log = script_logger("properties", smk.log[0])
    p = smk.params
    structures = read_structures(smk.input.structures)
    model, device = load_system_model(p.spec, p.device, p.dtype, smk.threads)
    t0 = time.perf_counter()
    rows, curves = thermal_job(structures, model, p.cfg, p.checkpoint, device)
    prov = provenance(stage="properties.thermal", inputs=[smk.input.structures], config=p.cfg,
                      potential=p.spec.potential, device=device, wall_s=time.perf_counter() - t0)
    write_table(rows, smk.output.thermal, prov)
    write_table(curves, smk.output.thermal_curves, prov)
    log.info("%s: cooling scan of %d structures, Tg %s K", p.spec.name, len(rows),
             rows["tg_K"].round(0).tolist() if "tg_K" in rows else "-")


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
