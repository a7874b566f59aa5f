"""SGLang adapter tests: run in their own environment (SGLang pins its own torch), by ci/test.sh's
second stage. Without SGLang installed they are not collected, unless MXFP4_REQUIRE_SGLANG=1
(what CI sets), where a missing SGLang is an error instead of a silent skip.

Everything here runs on a CPU-only machine with the PyPI (CUDA) build of SGLang, without
SGLANG_USE_CPU_ENGINE (which breaks SGLang's imports there).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import warnings

import pytest

if importlib.util.find_spec("sglang") is None:
    if os.environ.get("MXFP4_REQUIRE_SGLANG") == "1":
        raise RuntimeError("MXFP4_REQUIRE_SGLANG=1 but sglang is not importable in this environment")
    collect_ignore_glob = ["*.py"]
else:
    warnings.filterwarnings("ignore", module="sglang")
    assert os.environ.get("SGLANG_USE_CPU_ENGINE") in (None, "", "0"), "unset SGLANG_USE_CPU_ENGINE"


def publish(moe_runner_backend: str = "auto", **server_args) -> None:
    """Install SGLang's process-wide config (what a scheduler process does) with this flag."""
    from sglang.srt.layers.moe.utils import initialize_moe_config
    from sglang.srt.runtime_context import SpawnRanks
    from sglang.srt.server_args import ServerArgs
    from sglang.test.parallel_groups import publish as publish_with_stub_groups

    sa = ServerArgs(model_path="dummy", device="cpu", moe_runner_backend=moe_runner_backend, **server_args)
    publish_with_stub_groups(sa, role="scheduler", ranks=SpawnRanks(world_rank=0))
    initialize_moe_config()


@pytest.fixture(scope="session")
def sglang_plugins():
    """SGLang's own plugin loading, which finds this package through its entry point."""
    from sglang.srt.plugins import load_plugins

    load_plugins()
    publish()


@pytest.fixture
def runner_backend(sglang_plugins):
    """Set --moe-runner-backend as a scheduler sees it; restores auto afterwards."""
    yield publish
    publish()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny random gpt-oss, bf16 and MXFP4, made locally by the plugin (no download)."""
    from mxfp4_plugin.tiny_model import make_tiny_gpt_oss

    _, mxfp4_dir, _ = make_tiny_gpt_oss(tmp_path_factory.mktemp("tiny"))
    return mxfp4_dir


@pytest.fixture(scope="session")
def distributed(sglang_plugins):
    """A world of one (gloo): what building a whole SGLang model needs."""
    from sglang.srt.distributed import init_distributed_environment, initialize_model_parallel

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    init_distributed_environment(world_size=1, rank=0, local_rank=0,
                                 distributed_init_method=f"tcp://127.0.0.1:{port}", backend="gloo")
    initialize_model_parallel(backend="gloo")


@pytest.fixture
def loaded_tensors(monkeypatch):
    """What each core method received after loading, in creation order (a spy on the core)."""
    from mxfp4_plugin.method import Mxfp4MoEMethod

    seen: list[dict] = []
    original = Mxfp4MoEMethod.process_weights_after_loading

    def spy(self, tensors):
        seen.append({name: t.clone() for name, t in tensors.items()})
        return original(self, tensors)

    monkeypatch.setattr(Mxfp4MoEMethod, "process_weights_after_loading", spy)
    return seen


def pytest_configure(config):
    # SGLang's CUDA-side imports (flashinfer, cutlass DSL, quack) warn about deprecations and
    # missing GPUs on import; none of it concerns the plugin.
    for line in ("ignore::DeprecationWarning", "ignore:Only CUDA:UserWarning"):
        config.addinivalue_line("filterwarnings", line)
