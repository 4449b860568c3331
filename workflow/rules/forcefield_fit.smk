# Forcefield fitting by batched Bayesian optimisation (Liu thesis ch. 7): a Buckingham + Coulomb
# potential whose liquid reproduces a reference structure (a user's partial g(r), the analysis
# rdf table of one of the run's systems, or a measured F(Q)); candidates of a round run as one
# torch-sim batch. On when the config has a `forcefield_fit` section
# (schemas/forcefield_fit.schema.yaml). The fitted parameter file serves systems with
# `potential: buckingham` and `potential_options: {parameters: results/forcefield_fit/fitted.yaml}`.

import os

if SETTINGS.enabled("forcefield_fit"):
    FIT = SETTINGS.section("forcefield_fit")
    FIT_REF = SETTINGS.derived["forcefield_fit"]
    FIT_OUT = "results/forcefield_fit"
    FIT_TABLES = ["history", "curves", "angles"]

    if FIT_REF["reference_path"]:

        rule forcefield_fit:
            input:
                reference=FIT_REF["reference_path"],
            output:
                **{t: f"{FIT_OUT}/{t}.parquet" for t in FIT_TABLES},
                fitted=f"{FIT_OUT}/fitted.yaml",
                summary=f"{FIT_OUT}/summary.json",
            params:
                cfg=FIT,
                workdir=lambda wildcards, output: os.path.dirname(output.fitted),
                device=SETTINGS.config["device"],
            log:
                "logs/forcefield_fit/fit.log",
            benchmark:
                "logs/forcefield_fit/fit.bench.tsv"
            threads: max(2, FIT["md"]["workers"])
            resources:
                mem_mb=8000,
                runtime=720,
            conda:
                "../../envs/vitriflow.yaml"
            script:
                "../scripts/forcefield_fit.py"

        rule forcefield_fit_report:
            input:
                reference=FIT_REF["reference_path"],
                **{t: f"{FIT_OUT}/{t}.parquet" for t in FIT_TABLES},
                summary=f"{FIT_OUT}/summary.json",
            output:
                "results/report/sections/55_forcefield_fit.html",
            params:
                cfg=FIT,
                workdir=lambda wildcards, input: os.path.dirname(input.summary),
                reason="",
            log:
                "logs/forcefield_fit/report.log",
            benchmark:
                "logs/forcefield_fit/report.bench.tsv"
            threads: 1
            resources:
                mem_mb=2000,
                runtime=10,
            conda:
                "../../envs/vitriflow.yaml"
            script:
                "../scripts/forcefield_fit_report.py"

        STAGE_TARGETS.append(f"{FIT_OUT}/fitted.yaml")

    else:

        rule forcefield_fit_report:
            output:
                "results/report/sections/55_forcefield_fit.html",
            params:
                cfg=FIT,
                workdir=FIT_OUT,
                reason=FIT_REF["reason"],
            log:
                "logs/forcefield_fit/report.log",
            benchmark:
                "logs/forcefield_fit/report.bench.tsv"
            threads: 1
            resources:
                mem_mb=1000,
                runtime=5,
            conda:
                "../../envs/vitriflow.yaml"
            script:
                "../scripts/forcefield_fit_report.py"

    REPORT_SECTIONS.append("results/report/sections/55_forcefield_fit.html")
