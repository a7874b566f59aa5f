#!/usr/bin/env bash
# The main job, on a fresh machine: makes its own virtual environment, installs the package,
# asks the oracle what it picks here and why, and runs one MoE layer of gpt-oss-20b's size.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MXFP4_DEMO_VENV:-.venv-demo}
PY=${PYTHON:-python3.11}

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
pip install "torch==2.13.0" numpy pluggy safetensors tqdm 2>&1 | { grep -v "^WARNING: Location" || true; }
pip install --no-deps --force-reinstall . 2>&1 | { grep -v "^WARNING: Location" || true; }

"$VENV/bin/mxfp4-plugin" explain --experts 32 --top-k 4 --hidden 2880 --intermediate 2880
"$VENV/bin/python" ci/reference_layer.py
