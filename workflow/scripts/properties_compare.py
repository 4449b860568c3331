"""Every MD property of the run against measured glasses (rule properties_compare)."""


def main(smk) -> None:
    import pandas as pd

    from vitriflow.io import provenance, read_table, write_table
    from vitriflow.properties.experiment import load_measured
    from vitriflow.properties.stage import (
        compare_with_experiment,
        md_long,
        nbo_check,
        oxide_compositions,
        summary_table,
        tg_ranks,
    )
    from vitriflow.runtime import script_logger

    log = script_logger("properties", smk.log[0])
    i, parts = smk.input, smk.params.parts
    compositions = {}
    md_rows = []
    for k, system in enumerate(smk.params.systems):
        comps = read_table(i.compositions[k])[0]
        compositions.update(oxide_compositions(comps))
        tables = {"summary": read_table(i.summaries[k])[0]}
        for part, table in (("elastic", "elastic"), ("thermal", "thermal")):
            if system in parts[part]:
                tables[table] = read_table(i[table][parts[part].index(system)])[0]
        md_rows.append(md_long(tables, density_is_md=system in smk.params.npt_systems))
    md = pd.concat(md_rows, ignore_index=True)
    parity = compare_with_experiment(md, compositions, load_measured(None),
                                     smk.params.cfg["tolerance_mol"])
    network = (pd.concat([read_table(p)[0] for p in i.network], ignore_index=True)
               if parts["network"] else pd.DataFrame())
    prov = provenance(stage="properties.compare", inputs=list(i), config=smk.params.cfg)
    write_table(parity, smk.output.parity, prov)
    write_table(tg_ranks(parity), smk.output.tg_rank, prov)
    write_table(nbo_check(network), smk.output.nbo, prov)
    write_table(summary_table(md), smk.output.summary, prov)
    n_exp = int(parity["exp_value"].notna().sum()) if len(parity) else 0
    log.info("%d MD property values, %d with a measured counterpart", len(md), n_exp)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
