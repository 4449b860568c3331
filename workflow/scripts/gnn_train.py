"""Snakemake adapter: cross-validate and train the GNN surrogate (rule gnn_train)."""


def main(smk) -> None:
    import shutil

    import torch

    from vitriflow.io import provenance
    from vitriflow.runtime import pick_device, script_logger, seed_everything
    from vitriflow.surrogates.gnn import (
        load_dataset,
        train_and_evaluate,
        write_outputs,
        write_skipped_outputs,
    )

    log = script_logger("gnn_train", smk.log[0])
    settings = dict(smk.params.gnn)
    systems = list(smk.params.systems)
    torch.set_num_threads(int(settings["threads"]))
    device = pick_device(settings["device"])
    seed_everything(int(settings["seed"]))
    inputs = [*smk.input.quenched, *smk.input.properties]
    prov = provenance(stage="gnn", config=settings, inputs=inputs, seed=int(settings["seed"]),
                      systems=systems)
    frames, table, excluded = load_dataset(
        list(zip(systems, smk.input.quenched, smk.input.properties, strict=True)),
        settings["target"])
    for row in excluded.itertuples():
        log.warning("gnn: excluded %s (%s): %s", row.structure_id, row.system, row.reason)
    n_comp = table["label"].nunique() if len(table) else 0
    log.info("gnn: %d structures of %d compositions from %s, target %s, on %s", len(table), n_comp,
             systems, settings["target"], device)
    if n_comp < int(settings["min_compositions"]):
        reason = (f"{systems} give {n_comp} composition(s) with usable structures; "
                  f"gnn.min_compositions is {settings['min_compositions']}")
        log.warning("gnn skipped: %s", reason)
        write_skipped_outputs(dict(smk.output.items()), reason, settings, prov)
        return
    result = train_and_evaluate(frames, table, settings, device,
                                checkpoint_dir=smk.params.checkpoint_dir)
    write_outputs(result, excluded, settings, dict(smk.output.items()), prov)
    # the model file has the final members
    shutil.rmtree(smk.params.checkpoint_dir, ignore_errors=True)
    if result["training"]["not_predicted"]:
        log.warning("gnn: %d structures have no out-of-fold prediction (an element none of their "
                    "fold's training structures has); the metrics leave them out (training.json, "
                    "not_predicted)",
                    len(result["training"]["not_predicted"]))
    m = result["metrics"].set_index("model")
    log.info("gnn: out-of-fold RMSE gnn %.4g, composition ridge %.4g %s; within-composition r %.2f",
             m.loc["gnn", "rmse"], m.loc["composition_ridge", "rmse"], m.loc["gnn", "unit"],
             m.loc["gnn", "within_composition_r"])


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
