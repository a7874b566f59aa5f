#!/usr/bin/env bash
# The whole test suite, on a fresh machine, in two stages:
#  1. core: its own virtual environment with CPU torch from the local wheel, this package
#     installed (not editable, so the tests see what a user installs), pytest on tests/
#     without tests/sglang;
#  2. sglang: SGLang pins its own torch (sglang==0.5.23 -> torch 2.14.1), so a second virtual
#     environment (.venv-sglang, ~4.5 min and ~11 GiB on first install, reused afterwards)
#     with sglang, the test tools and this package, running tests/sglang. Skipped only when
#     MXFP4_SKIP_SGLANG=1 is set by hand.
# Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
SGLANG_VERSION=0.5.23
quiet() { { grep -v "^WARNING: Location" || true; }; }

VENV=${MXFP4_TEST_VENV:-.venv-test}
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
pip install "torch==2.13.0" numpy pluggy safetensors tqdm "pytest>=8" "hypothesis>=6" 2>&1 | quiet
pip install --no-deps --force-reinstall . 2>&1 | quiet

echo "== stage 1: core tests"
"$VENV/bin/pytest" -q -p no:cacheprovider tests --ignore=tests/sglang "$@"

if [ "${MXFP4_SKIP_SGLANG:-0}" = 1 ]; then
    echo "== stage 2: sglang tests SKIPPED (MXFP4_SKIP_SGLANG=1)"
    exit 0
fi
SG_VENV=${MXFP4_SGLANG_VENV:-.venv-sglang}
if [ ! -x "$SG_VENV/bin/python" ]; then
    "$PY" -m venv "$SG_VENV"
fi
sgpip() { "$SG_VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
if ! "$SG_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('sglang') != '$SGLANG_VERSION')" 2>/dev/null; then
    echo "== installing sglang==$SGLANG_VERSION into $SG_VENV (first time: ~4.5 min, ~11 GiB)"
    sgpip install "sglang==$SGLANG_VERSION" pluggy safetensors tqdm "pytest>=8" "hypothesis>=6" 2>&1 | quiet
fi
sgpip install --no-deps --force-reinstall . 2>&1 | quiet

echo "== stage 2: sglang $SGLANG_VERSION tests"
# MXFP4_REQUIRE_SGLANG makes tests/sglang fail, not skip, if SGLang cannot be imported.
MXFP4_REQUIRE_SGLANG=1 "$SG_VENV/bin/pytest" -q -p no:cacheprovider tests/sglang "$@"
