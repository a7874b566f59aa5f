#!/usr/bin/env bash
# The whole test suite, on a fresh machine: makes its own virtual environment, installs what
# the tests need (CPU torch from the local wheel), installs this package (not editable, so the
# tests see what a user installs), and runs pytest. Triton's CPU wheel runs our kernels under its
# interpreter (tests/test_triton_interpreter.py).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MXFP4_TEST_VENV:-.venv-test}
PY=${PYTHON:-python3.11}

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
pip install "torch==2.13.0" "triton==3.9.0" numpy pluggy safetensors tqdm "pytest>=8" "hypothesis>=6" 2>&1 | { grep -v "^WARNING: Location" || true; }
pip install --no-deps --force-reinstall . 2>&1 | { grep -v "^WARNING: Location" || true; }

"$VENV/bin/pytest" -q -p no:cacheprovider tests "$@"
