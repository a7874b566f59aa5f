#!/usr/bin/env bash
# The whole test suite, on a fresh machine: makes its own virtual environment (CPU torch,
# vLLM's CPU build, test tools, this package), then runs pytest. Engine tests are required
# here (MXFP4_REQUIRE_ENGINES=1): a missing engine is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/vllm_venv.sh
VENV=${MXFP4_TEST_VENV:-.venv-test}

make_vllm_venv "$VENV" "pytest>=8" "hypothesis>=6"
MXFP4_REQUIRE_ENGINES=1 "$VENV/bin/pytest" -q -p no:cacheprovider tests "$@"
