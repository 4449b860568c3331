# Two commands on a fresh machine:  make run  (demo workflow)   make test  (test suite)
VENV := .venv
CORES ?= 2
STAMP := $(VENV)/.installed

.PHONY: run test lint dry-run binary-scan-dry-run clean-results

$(STAMP): pyproject.toml scripts/install-gpaw
	@py=$$(scripts/find-python) || exit 1; \
	  [ -x $(VENV)/bin/python ] || $$py -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[dev]"
	scripts/install-gpaw $(VENV)
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/vitriflow config check config/config.yaml
	$(VENV)/bin/snakemake --profile profiles/default --cores $(CORES)

test: $(STAMP)
	$(VENV)/bin/pytest -q --durations=20

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/snakemake --lint

dry-run: $(STAMP)
	$(VENV)/bin/snakemake -n --cores $(CORES)

binary-scan-dry-run: $(STAMP)
	$(VENV)/bin/python benchmarks/dag_build.py config/binary_scan.yaml

clean-results:
	rm -rf results logs .snakemake
