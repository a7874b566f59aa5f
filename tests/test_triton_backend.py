"""The triton backend's contract without a GPU: what it refuses and why, where the oracle ranks it."""

import pytest
import torch

from mxfp4_plugin import Activation, ActivationSpec, MoESpec, Platform, choose
from mxfp4_plugin.backends.triton import TritonBackend

SPEC = MoESpec(num_experts=8, top_k=2, hidden_size=64, intermediate_size=64,
               activation=ActivationSpec(Activation.SWIGLU_OAI, alpha=1.702, limit=7.0), has_bias=True)
H100 = Platform("cuda", (9, 0), frozenset({"triton"}))


def test_supported_on_hopper_with_triton():
    assert TritonBackend.supports(SPEC, H100) is None


@pytest.mark.parametrize("platform, spec, reason", [
    (Platform("cpu", packages=frozenset({"triton"})), SPEC, "needs a CUDA GPU"),
    (Platform("cuda", (7, 5), frozenset({"triton"})), SPEC, "found 7.5; only sm90 has been measured"),
    (Platform("cuda", (9, 0)), SPEC, "the triton package is not installed"),
    (H100, MoESpec(**{**SPEC.__dict__, "act_dtype": torch.float32}), "bfloat16 or float16 (W4A16 kernels), "
                                                                       "the layer uses torch.float32"),
])
def test_supports_says_exactly_why_not(platform, spec, reason):
    assert reason in TritonBackend.supports(spec, platform)


def test_oracle_places_triton_as_measured_and_never_picks_it_on_cpu():
    from mxfp4_plugin.plugins import registered_backends

    backends = registered_backends()
    # Hopper: ours first (BENCHMARKS.md round 12), triton_kernels next and chosen by name
    assert choose(SPEC, H100, backends=backends).name == "triton"  # H100 here has no triton_kernels
    hopper = Platform("cuda", (9, 0), frozenset({"triton", "triton_kernels"}), "fake H200",
                      {"triton_kernels": "3.5.1 at triton_kernels"})
    decision = choose(SPEC, hopper, backends=backends)
    assert decision.name == "triton"
    assert {c.backend: c.verdict for c in decision.candidates}["triton_kernels"] == "supported"
    assert choose(SPEC, hopper, "triton_kernels", backends=backends).name == "triton_kernels"
    # a family it was never checked on: auto skips it, by name it runs and the decision says so
    sm120 = Platform("cuda", (12, 0), frozenset({"triton"}))
    assert choose(SPEC, sm120, backends=backends).name == "reference"
    assert "not yet checked" in choose(SPEC, sm120, "triton", backends=backends).reason
    cpu = choose(SPEC, Platform("cpu", packages=frozenset({"triton"})), backends=backends)
    assert cpu.name == "reference"
    assert {c.backend: c.verdict for c in cpu.candidates}.get("triton") in (None, "rejected")


def test_programmatic_dependent_launch_only_on_a_gpu(monkeypatch):
    from mxfp4_plugin.kernels import moe

    assert moe._pdl_options(torch.device("cpu")) == {"PDL": False, "launch_pdl": False}
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # the interpreter runs no griddepcontrol, even given a GPU
    assert moe._pdl_options(torch.device("cuda", 0)) == {"PDL": False, "launch_pdl": False}
