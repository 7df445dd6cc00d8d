# Two entry points for a fresh clone:
#   make pipeline   install into .venv, validate params.yaml, run `dvc repro`
#   make test       install into .venv, run ruff and the test suite
# `make install` alone sets up .venv; `make bench` runs the training benchmark.
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install pipeline test lint bench

install:
	bash scripts/install.sh

pipeline: install
	python -m biasvar.validate params.yaml
	dvc repro

lint:
	ruff check .

test: install lint
	python -m pytest -q

bench: install
	python bench/bench_train.py
