#!/usr/bin/env bash
# Create .venv and install biasvar with its dependencies, the test tools and the
# documentation tools (the dev and docs extras).
#
# PyTorch is installed first, pinned to 2.13.0: on the project's CPU machines
# that version is a local CPU wheel (no multi-GB CUDA download); on a GPU
# machine the same pin resolves to PyPI's CUDA-enabled build. An existing torch
# in .venv is kept. Set BIASVAR_TORCH to override the requirement.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet "${BIASVAR_TORCH:-torch==2.13.0}"
fi
.venv/bin/python -m pip install --quiet -e ".[dev,docs]"
.venv/bin/python -c "import torch, biasvar; print(f'biasvar {biasvar.__version__}, torch {torch.__version__}, cuda available: {torch.cuda.is_available()}')"
