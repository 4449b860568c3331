"""Fit a Buckingham + Coulomb potential to the reference structure by batched Bayesian
optimisation; resumes from its history (rule forcefield_fit)."""


def main(smk) -> None:
    import torch

    from vitriflow.forcefield_fit import run_fit
    from vitriflow.runtime import pick_device, script_logger

    log = script_logger("forcefield_fit", smk.log[0])
    torch.set_num_threads(max(1, smk.threads))
    result = run_fit(smk.params.cfg, smk.params.workdir, reference_path=smk.input.reference,
                     device=pick_device(smk.params.device))
    best = result.best
    log.info("best R_chi %.4f after %d candidates; fitted set in %s", best["cost"],
             len(result.history), smk.output.fitted)


if "snakemake" in globals() and __name__ == "__main__":  # not in md.workers' spawned processes
    main(snakemake)  # noqa: F821
