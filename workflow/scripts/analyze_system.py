"""Snakemake adapter: analyse the quenched structures of one system (rule analyze_system)."""

import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path


def main(smk) -> None:
    from vitriflow.analysis import AnalysisSettings, analyze_system
    from vitriflow.io import provenance, read_structures, read_table, sha256_file, write_table
    from vitriflow.runtime import script_logger

    log = script_logger("analyze_system", smk.log[0])
    system = smk.wildcards.system
    # the data files the DAG resolved (registry datasets in the cache, or the user's files)
    settings = replace(AnalysisSettings.from_config(smk.params.analysis), **smk.params.data)
    frames = read_structures(smk.input.structures)
    log.info("%s: %d frames from %s", system, len(frames), smk.input.structures)
    samples = defaultdict(list)  # frames along the MD's last stage (protocol sample_every)
    for a in read_structures(smk.input.samples):
        samples[str(a.info.get("structure_id", ""))].append(a)
    if samples:
        log.info("%s: g(r), S(Q), CN and angles averaged over %d frames of the last MD stage (%s)",
                 system, sum(map(len, samples.values())), smk.input.samples)

    status = {}
    if Path(smk.input.summary).is_file():
        summary, _ = read_table(smk.input.summary)
        if {"structure_id", "status"} <= set(summary.columns):
            reasons = summary["reason"] if "reason" in summary else [""] * len(summary)
            status = {str(s): (str(st), str(r or ""))
                      for s, st, r in zip(summary["structure_id"], summary["status"], reasons,
                                          strict=True)}
    refs = None
    if Path(smk.input.refs).is_file():
        refs = json.loads(Path(smk.input.refs).read_text())
        if not isinstance(refs, dict) or "energies_per_atom" not in refs:
            raise ValueError(f"{smk.input.refs}: expected an object with keys potential, "
                             "energies_per_atom, reason")

    res = analyze_system(frames, settings, system, refs=refs, status_override=status,
                         samples=samples)
    extra = {}
    for key in ("scattering_lengths", "experimental_fq"):
        path = getattr(settings, key)
        extra[f"{key}_sha256"] = sha256_file(path) if path and Path(path).is_file() else None
    prov = provenance(stage="analysis", config=smk.params.analysis,
                      inputs=[smk.input.structures, smk.input.samples, smk.input.summary,
                              smk.input.refs],
                      system=system, **res.notes, **extra)
    for name in ("rdf", "properties", "distributions", "sq"):
        write_table(getattr(res, name), smk.output[name], prov)
    p = res.properties
    log.info("%s: %d structures analysed, %d not ok; scattering lengths from %s",
             system, int((p["status"] == "ok").sum()), int((p["status"] != "ok").sum()),
             res.notes["scattering_lengths_source"])


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
