"""Elastic tensors and moduli of one system's relaxed glasses, batched (rule properties_elastic)."""


def main(smk) -> None:
    import time

    from vitriflow.io import provenance, read_structures, write_table
    from vitriflow.properties.stage import elastic_job
    from vitriflow.runtime import load_system_model, script_logger

    log = script_logger("properties", smk.log[0])
    p = smk.params
    structures = read_structures(smk.input.structures)
    model, device = load_system_model(p.spec, p.device, p.dtype, smk.threads)
    t0 = time.perf_counter()
    table = elastic_job(structures, model, p.cfg)
    wall = time.perf_counter() - t0
    write_table(table, smk.output.elastic,
                provenance(stage="properties.elastic", inputs=[smk.input.structures], config=p.cfg,
                           potential=p.spec.potential, device=device, wall_s=wall))
    ok = table[table["status"] == "ok"]
    log.info("%s: %d of %d elastic tensors in %.0f s; mean E %.1f GPa", p.spec.name, len(ok),
             len(table), wall, ok["youngs_modulus_GPa"].mean() if len(ok) else float("nan"))


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
