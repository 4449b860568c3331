"""MLIP single points on the frames selected for DFT (rule dft_mlip)."""


def main(smk) -> None:
    import torch

    from vitriflow.dft.stage import mlip_stage
    from vitriflow.runtime import pick_device, script_logger

    log = script_logger("dft_mlip", smk.log[0])
    torch.set_num_threads(smk.threads)
    mlip_stage(smk.input.frames, smk.output.table, smk.params.cfg,
               pick_device(smk.params.cfg["device"]))
    log.info("MLIP energies written to %s", smk.output.table)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
