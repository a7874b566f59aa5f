#!/usr/bin/env bash
# The main job, on a fresh machine: makes its own virtual environment (CPU torch, vLLM's CPU
# build, this package), makes a tiny gpt-oss and quantizes it to MXFP4 with our own code,
# serves it through vLLM with --quantization mxfp4-plugin, and prints the backend the plugin
# chose, the reason and the generated token ids.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/vllm_venv.sh
VENV=${MXFP4_DEMO_VENV:-.venv-demo}

make_vllm_venv "$VENV"
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}   # GiB; the default takes most of the memory
export VLLM_ALLOW_INSECURE_SERIALIZATION=1                  # lets the demo ask the workers what they chose
"$VENV/bin/python" ci/vllm_demo.py "$@"
