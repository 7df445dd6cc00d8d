# Two entry points for a fresh clone:
#   make pipeline   install into .venv, validate params.yaml, run `dvc repro`
#   make test       install into .venv, run ruff and the test suite
# `make install` alone sets up .venv; `make bench` runs the training benchmark.
#   make parallel JOBS=n   the pipeline with its blocks trained by n parallel jobs
#                          (default: one per GPU, else one per core); README "Reproducibility"
#   make paper JOBS=n      the paper configuration (configs/paper.yaml), saved as experiment `paper`,
#                          its provenance (lock, params, machine, per-stage time and memory)
#                          in reports/provenance/paper
#   make biases JOBS=n     the simplicity-bias grid (configs/biases.yaml), experiment `biases`,
#                          report reports/biases, provenance in reports/provenance/biases
#   make exps              `dvc exp show` of the headline metrics, narrow (README "Experiments")
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install pipeline test lint bench parallel paper biases exps

install:
	bash scripts/install.sh

pipeline: install
	python -m biasvar.tools.validate params.yaml
	dvc repro

lint:
	ruff check .

test: install lint
	python -m pytest -q

bench: install
	python bench/bench_train.py

JOBS ?=
parallel: install
	python -m biasvar.tools.parallel $(if $(JOBS),-j $(JOBS))

paper: install
	python -m biasvar.tools.parallel $(if $(JOBS),-j $(JOBS)) --config configs/paper.yaml --exp paper \
		--provenance reports/provenance/paper

biases: install
	python -m biasvar.tools.parallel $(if $(JOBS),-j $(JOBS)) --config configs/biases.yaml --exp biases \
		--provenance reports/provenance/biases

exps:
	dvc exp show --only-changed --drop '^(data|src|stages)/|Created' --hide-workspace --no-pager
