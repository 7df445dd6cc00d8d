# Two entry points for a fresh clone:
#   make pipeline   install into .venv, validate params.yaml, run `dvc repro`, copy the
#                   regenerated fragments into README.md
#   make test       install into .venv, run ruff, the test suite and the strict docs build
# `make install` alone sets up .venv; `make bench` runs the training benchmark.
#   make test-fast  ruff and the tests without the DVC pipeline tests (-m "not pipeline"),
#                   for development
#   make docs       the documentation site (mkdocs.yml) into site/, --strict: a broken link,
#                   a missing included fragment or API object fails it
#   make launch JOBS=n     the pipeline with its blocks trained as n parallel tasks
#                          (biasvar launch; default: one per GPU, else one per core);
#                          docs/scaling.md
#   make paper JOBS=n      the paper configuration (configs/experiment/paper.yaml), saved as
#                          experiment `paper`, its provenance (lock, params, machine,
#                          per-stage time and memory) in reports/provenance/paper
#   make biases JOBS=n     the simplicity-bias grid (configs/experiment/biases.yaml),
#                          experiment `biases`, report reports/biases, provenance in
#                          reports/provenance/biases
#   make fragments         regenerate the fragments of every committed report and the bench
#                          and copy them into README.md
#   make exps              `dvc exp show` of the headline metrics, narrow
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

# The theme and a plugin print a banner about MkDocs 2 on every build; it is no warning of
# the build (--strict does not count it) and only hides the build's own output.
export NO_MKDOCS_2_WARNING := 1
export DISABLE_MKDOCS_2_WARNING := true
DOCS_BUILD := mkdocs build --strict

.PHONY: install pipeline fragments test test-fast lint docs bench launch paper biases exps

install:
	bash scripts/install.sh

pipeline: install
	python -m biasvar.tools.validate params.yaml
	# source: import reproduces the report only (DVC has no conditional stages: a bare
	# `dvc repro` would also train the default ensemble, which the report then ignores)
	dvc repro $$(grep -qE '^source: *import' params.yaml && echo plot headline)
	python -m biasvar.tools.fragments

# Regenerate every generated fragment from committed results (report metrics, bench JSON)
# and copy them into README.md's marked blocks: no hand edit after a rerun.
fragments: install
	python -m biasvar.report.fragments $(patsubst %/metrics.json,%,$(wildcard reports/*/metrics.json))
	python -m biasvar.report.fragments --compare reports/default reports/digits
	python bench/bench_train.py --render bench/results/bench.json
	python bench/bench_generic.py --render bench/results/generic.json
	python bench/bench_analyze.py --render bench/results/analyze.json
	python bench/bench_launch.py --render bench/results/launch.json
	python -m biasvar.tools.fragments

lint:
	ruff check .

test: install lint
	python -m pytest -q -n auto --dist loadfile --durations=15
	$(DOCS_BUILD)

test-fast: install lint
	python -m pytest -q -n auto --dist loadfile -m "not pipeline"

docs: install
	$(DOCS_BUILD)

bench: install
	python bench/bench_train.py
	python bench/bench_generic.py
	python bench/bench_analyze.py

JOBS ?=
launch: install
	biasvar launch $(if $(JOBS),-j $(JOBS))

paper: install
	biasvar launch $(if $(JOBS),-j $(JOBS)) -S +experiment=paper --name paper \
		--provenance reports/provenance/paper

biases: install
	biasvar launch $(if $(JOBS),-j $(JOBS)) -S +experiment=biases --name biases \
		--provenance reports/provenance/biases

exps:
	dvc exp show --only-changed --drop '^(data|src|stages)/|Created' --hide-workspace --no-pager
