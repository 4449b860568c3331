"""Batched melt-quench of every structure of a system; resumes from its checkpoint (rule md)."""


def main(smk) -> None:
    import time
    from pathlib import Path

    import pandas as pd

    from vitriflow.io import provenance, read_structures, write_structures, write_table
    from vitriflow.md import Protocol, run_melt_quench
    from vitriflow.md.engine import load_tasks, run_digest
    from vitriflow.runtime import load_system_model, script_logger

    log = script_logger("md", smk.log[0])
    p = smk.params
    structures = read_structures(smk.input.structures)
    protocol = Protocol.from_config(p.protocol)
    model, device = load_system_model(p.spec, p.device, p.dtype, smk.threads)
    log.info("%s: %d structures, potential %s on %s, %d steps of %.2f fs", p.spec.name,
             len(structures), p.spec.potential, device, protocol.total_steps, protocol.timestep_fs)
    # a checkpoint of this very run (not one of other settings, which starts afresh): then the
    # wall time covers only the rest of the run
    resumed = Path(p.checkpoint).is_file() and load_tasks(
        Path(p.checkpoint), run_digest(structures, model, protocol),
        [a.info["structure_id"] for a in structures]) is not None
    t0 = time.perf_counter()
    samples = []
    final, trace = run_melt_quench(structures, model, protocol, p.checkpoint, device=device,
                                   samples=samples)
    wall_s = time.perf_counter() - t0
    for a in (*final, *samples):
        a.info["potential"] = p.spec.potential
    n_failed = sum(a.info["status"] != "ok" for a in final)
    atom_steps = sum(len(a) for a in structures) * protocol.total_steps
    log.info("%s: %d ok, %d failed; %.0f s, %.3g atom-steps/s%s", p.spec.name,
             len(final) - n_failed, n_failed, wall_s, atom_steps / wall_s,
             " (resumed run)" if resumed else "")
    if final and n_failed == len(final):
        log.warning("%s: every structure failed (reasons in %s); the report marks the system red",
                    p.spec.name, smk.output.summary)
    prov = provenance(stage="md", inputs=[smk.input.structures], potential=p.spec.potential,
                      protocol=p.protocol, device=device, n_failed=n_failed, wall_s=wall_s,
                      atom_steps=atom_steps, resumed=resumed)
    write_table(pd.DataFrame(trace), smk.output.trace, prov)
    write_table(pd.DataFrame([dict(a.info) for a in final]), smk.output.summary, prov)
    write_structures(final, smk.output.quenched)
    # frames along the last stage (protocol sample_every; empty file when it is 0), for analysis
    write_structures(samples, smk.output.samples)
    if samples:
        log.info("%s: %d frames kept along the last stage -> %s", p.spec.name, len(samples),
                 smk.output.samples)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
