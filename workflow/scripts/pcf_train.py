"""Snakemake adapter (rule pcf_train): build the PCF training set, train and evaluate all models."""


def main(smk) -> None:
    import torch

    from vitriflow.io import provenance
    from vitriflow.runtime import script_logger, seed_everything
    from vitriflow.surrogates.pcf import (
        build_dataset,
        train_and_evaluate,
        write_outputs,
        write_skipped_outputs,
    )

    log = script_logger("pcf_train", smk.log[0])
    settings = dict(smk.params.pcf)
    systems = list(smk.params.systems)
    torch.set_num_threads(1)  # the autoencoder is small: one thread beats contended ones
    seed_everything(int(settings["seed"]))
    prov = provenance(stage="pcf", config=settings,
                      inputs=[*smk.input.rdf, *smk.input.compositions], seed=int(settings["seed"]),
                      systems=systems)
    ds = build_dataset(list(zip(systems, smk.input.rdf, smk.input.compositions, strict=True)),
                       pairs=settings["pairs"], basis=settings["basis"], r_max=settings["r_max"],
                       smoothing_A=settings["smoothing_A"])
    n_comp = len(set(ds.groups))
    log.info("pcf: %d curves (%d compositions, %d pairs, %d r points) from %s",
             len(ds.y), n_comp, ds.meta["pair"].nunique(), len(ds.r), systems)
    if n_comp < int(settings["min_compositions"]):
        reason = (f"the family {systems} has {n_comp} distinct composition(s) with RDFs; "
                  f"pcf.min_compositions is {settings['min_compositions']}")
        log.warning("pcf skipped: %s", reason)
        write_skipped_outputs(dict(smk.output.items()), reason, prov)
        return
    result = train_and_evaluate(ds, settings)
    write_outputs(ds, result, settings, systems, dict(smk.output.items()), prov)
    log.info("pcf: default model %s (lowest held-out MSE: %s)", result["default_model"],
             result["best_model"])


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
