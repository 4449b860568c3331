# Glass properties from the MD: network structure, elastic moduli, cooling scan (Tg, CTE),
# diffusion; then every property against measured glasses and report section 45. On when the
# config has a `properties` section (schemas/properties.schema.yaml); each part runs on the
# systems it names (vitriflow.properties.checks decides at start).

if SETTINGS.enabled("properties"):
    PROPS = SETTINGS.section("properties")
    PROP_SYSTEMS = SETTINGS.derived["properties"]["systems"]
    PROP_XRAY = SETTINGS.derived["properties"]["xray"]
    PROP_OUT = "results/properties"
    PROP_TABLES = {
        "network": ["network", "qn", "rings", "xray"],
        "elastic": ["elastic"],
        "thermal": ["thermal", "thermal_curves"],
        "transport": ["transport", "msd"],
    }

    # every per-system table of the enabled parts, and what the comparison reads besides
    PROP_INPUTS = {
        table: expand(f"{PROP_OUT}/{{system}}/{table}.parquet", system=PROP_SYSTEMS[part])
        for part, tables in PROP_TABLES.items()
        for table in tables
    }
    PROP_INPUTS["summaries"] = expand("results/md/{system}/summary.parquet", system=SYSTEM_NAMES)
    PROP_INPUTS["compositions"] = expand(
        "results/structures/{system}/compositions.parquet", system=SYSTEM_NAMES
    )

    rule properties_network:
        input:
            structures="results/md/{system}/quenched.extxyz",
            **({"xray_form_factors": PROP_XRAY.path} if PROP_XRAY.path else {}),
        output:
            **{t: f"{PROP_OUT}/{{system}}/{t}.parquet" for t in PROP_TABLES["network"]},
        params:
            cfg=PROPS["network"],
            analysis=SETTINGS.section("analysis") or {},
            xray=PROP_XRAY.path,
            xray_reason=PROP_XRAY.reason,
        log:
            "logs/properties/network_{system}.log",
        benchmark:
            "logs/properties/network_{system}.bench.tsv"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=60,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/properties_network.py"

    rule properties_elastic:
        input:
            structures="results/md/{system}/quenched.extxyz",
            potential=potential_files,
        output:
            elastic=f"{PROP_OUT}/{{system}}/elastic.parquet",
        params:
            cfg=PROPS["elastic"],
            spec=system_spec,
            device=SETTINGS.config["device"],
            dtype=SETTINGS.config["dtype"],
        log:
            "logs/properties/elastic_{system}.log",
        benchmark:
            "logs/properties/elastic_{system}.bench.tsv"
        threads: 1
        resources:
            mem_mb=8000,
            runtime=240,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/properties_elastic.py"

    rule properties_thermal:
        input:
            structures="results/md/{system}/quenched.extxyz",
            potential=potential_files,
        output:
            thermal=f"{PROP_OUT}/{{system}}/thermal.parquet",
            thermal_curves=f"{PROP_OUT}/{{system}}/thermal_curves.parquet",
        params:
            cfg=PROPS["thermal"],
            spec=system_spec,
            device=SETTINGS.config["device"],
            dtype=SETTINGS.config["dtype"],
            checkpoint=lambda wc: f"{PROP_OUT}/{wc.system}/thermal_checkpoint.pt",
        log:
            "logs/properties/thermal_{system}.log",
        benchmark:
            "logs/properties/thermal_{system}.bench.tsv"
        threads: 1
        resources:
            mem_mb=8000,
            runtime=720,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/properties_thermal.py"

    rule properties_transport:
        input:
            structures="results/md/{system}/quenched.extxyz",
            potential=potential_files,
        output:
            transport=f"{PROP_OUT}/{{system}}/transport.parquet",
            msd=f"{PROP_OUT}/{{system}}/msd.parquet",
        params:
            cfg=PROPS["transport"],
            spec=system_spec,
            protocol=protocol_of,
            device=SETTINGS.config["device"],
            dtype=SETTINGS.config["dtype"],
            checkpoint_dir=lambda wc: f"{PROP_OUT}/{wc.system}",
        log:
            "logs/properties/transport_{system}.log",
        benchmark:
            "logs/properties/transport_{system}.bench.tsv"
        threads: 1
        resources:
            mem_mb=8000,
            runtime=720,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/properties_transport.py"

    rule properties_compare:
        input:
            **PROP_INPUTS,
        output:
            parity=f"{PROP_OUT}/comparison.parquet",
            tg_rank=f"{PROP_OUT}/tg_rank.parquet",
            nbo=f"{PROP_OUT}/nbo_check.parquet",
            summary=f"{PROP_OUT}/summary.parquet",
        params:
            cfg=PROPS["experiment"],
            systems=SYSTEM_NAMES,
            parts=PROP_SYSTEMS,
            # systems whose protocol lets the cell relax (an npt stage): their density is an MD result
            npt_systems=[
                s
                for s in SYSTEM_NAMES
                if any(st["ensemble"] == "npt" for st in SETTINGS.protocol(s)["stages"])
            ],
        log:
            "logs/properties/compare.log",
        benchmark:
            "logs/properties/compare.bench.tsv"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/properties_compare.py"

    rule properties_report:
        input:
            **PROP_INPUTS,
            parity=rules.properties_compare.output.parity,
            tg_rank=rules.properties_compare.output.tg_rank,
            nbo=rules.properties_compare.output.nbo,
            summary=rules.properties_compare.output.summary,
        output:
            "results/report/sections/45_properties.html",
        params:
            cfg=PROPS["experiment"],
            parts=PROP_SYSTEMS,
        log:
            "logs/properties/report.log",
        benchmark:
            "logs/properties/report.bench.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/properties_report.py"

    REPORT_SECTIONS.append("results/report/sections/45_properties.html")
    STAGE_TARGETS.append(f"{PROP_OUT}/comparison.parquet")
