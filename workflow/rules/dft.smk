# DFT comparison of the MLIP's amorphous energies (docs/dft.md). On when the config has a `dft`
# section (schemas/dft.schema.yaml).

if SETTINGS.enabled("dft"):
    DFT = SETTINGS.section("dft")
    DFT_SYSTEMS = SETTINGS.derived["dft"]["systems"]
    DFT_SEED = SETTINGS.derived["dft"]["seed"]
    DFT_CONVERGENCE = bool(DFT["gpaw"]["convergence_ecuts_eV"] or DFT["gpaw"]["convergence_kpt_densities"])

    rule dft_select:
        input:
            quenched="results/md/{system}/quenched.extxyz",
            references="results/references/{system}.parquet",
            crystals="results/references/{system}_crystals.extxyz",
        output:
            frames="results/dft/{system}/selection.extxyz",
            table="results/dft/{system}/selection.parquet",
        params:
            cfg=DFT,
            seed=DFT_SEED,
        log:
            "logs/dft/select_{system}.log",
        benchmark:
            "logs/dft/select_{system}.bench.tsv"
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/dft_select.py"

    rule dft_mlip:
        input:
            frames="results/dft/{system}/selection.extxyz",
        output:
            table="results/dft/{system}/mlip.parquet",
        params:
            cfg=DFT,
        threads: 1
        log:
            "logs/dft/mlip_{system}.log",
        benchmark:
            "logs/dft/mlip_{system}.bench.tsv"
        resources:
            mem_mb=4000,
            runtime=30,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/dft_mlip.py"

    rule dft_gpaw:
        input:
            frames="results/dft/{system}/selection.extxyz",
        output:
            table="results/dft/{system}/gpaw/energies.parquet",
        params:
            cfg=DFT,
            workdir=lambda wc: f"results/dft/{wc.system}/gpaw/jobs",
        threads: DFT["threads"]
        log:
            "logs/dft/gpaw_{system}.log",
        benchmark:
            "logs/dft/gpaw_{system}.bench.tsv"
        resources:
            mem_mb=DFT["mem_mb"],
            runtime=DFT["runtime_min"],
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/dft_gpaw.py"

    rule dft_gpaw_convergence:
        input:
            frames="results/dft/{system}/selection.extxyz",
        output:
            table="results/dft/{system}/gpaw/convergence.parquet",
        params:
            cfg=DFT,
            workdir=lambda wc: f"results/dft/{wc.system}/gpaw/convergence",
        threads: DFT["threads"]
        log:
            "logs/dft/gpaw_convergence_{system}.log",
        benchmark:
            "logs/dft/gpaw_convergence_{system}.bench.tsv"
        resources:
            mem_mb=DFT["mem_mb"],
            runtime=DFT["runtime_min"],
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/dft_gpaw_convergence.py"

    rule dft_vasp_inputs:
        input:
            frames="results/dft/{system}/selection.extxyz",
        output:
            jobs="results/dft/{system}/vasp/jobs.parquet",
        params:
            cfg=DFT,
            root=lambda wc: f"results/dft/{wc.system}/vasp/jobs",
        log:
            "logs/dft/vasp_inputs_{system}.log",
        benchmark:
            "logs/dft/vasp_inputs_{system}.bench.tsv"
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/dft_vasp_inputs.py"

    rule dft_vasp_run:
        input:
            jobs="results/dft/{system}/vasp/jobs.parquet",
        output:
            runs="results/dft/{system}/vasp/runs.parquet",
        params:
            cfg=DFT,
            root=lambda wc: f"results/dft/{wc.system}/vasp/jobs",
        threads: DFT["threads"]
        log:
            "logs/dft/vasp_run_{system}.log",
        benchmark:
            "logs/dft/vasp_run_{system}.bench.tsv"
        resources:
            mem_mb=DFT["mem_mb"],
            runtime=DFT["runtime_min"],
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/dft_vasp_run.py"

    rule dft_vasp_parse:
        input:
            runs="results/dft/{system}/vasp/runs.parquet",
        output:
            table="results/dft/{system}/vasp/energies.parquet",
        params:
            cfg=DFT,
            root=lambda wc: f"results/dft/{wc.system}/vasp/jobs",
        log:
            "logs/dft/vasp_parse_{system}.log",
        benchmark:
            "logs/dft/vasp_parse_{system}.bench.tsv"
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/dft_vasp_parse.py"

    rule dft_table:
        input:
            selection="results/dft/{system}/selection.parquet",
            # the user's energy file: editing it reruns this rule
            energies=DFT["table"]["path"] if DFT["backend"] == "table" and DFT["table"]["path"] else [],
        output:
            table="results/dft/{system}/table/energies.parquet",
        params:
            cfg=DFT,
        log:
            "logs/dft/table_{system}.log",
        benchmark:
            "logs/dft/table_{system}.bench.tsv"
        resources:
            mem_mb=1000,
            runtime=5,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/dft_table.py"

    rule dft_compare:
        input:
            selection=expand("results/dft/{system}/selection.parquet", system=DFT_SYSTEMS),
            mlip=expand("results/dft/{system}/mlip.parquet", system=DFT_SYSTEMS),
            dft=expand("results/dft/{system}/{backend}/energies.parquet", system=DFT_SYSTEMS, backend=DFT["backend"]),
            convergence=expand("results/dft/{system}/gpaw/convergence.parquet", system=DFT_SYSTEMS)
            if DFT_CONVERGENCE and DFT["backend"] == "gpaw"
            else [],
        output:
            table="results/dft/comparison.parquet",
            summary="results/dft/summary.json",
            section="results/report/sections/50_dft.html",
        params:
            cfg=DFT,
            seed=DFT_SEED,
            systems=DFT_SYSTEMS,
        log:
            "logs/dft/compare.log",
        benchmark:
            "logs/dft/compare.bench.tsv"
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/dft_compare.py"

    REPORT_SECTIONS.append("results/report/sections/50_dft.html")
    STAGE_TARGETS.extend(["results/dft/comparison.parquet", "results/dft/summary.json"])
