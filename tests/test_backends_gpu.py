"""Every third-party backend that can run on this GPU against ``reference``, on fresh random data.

Skips cleanly without CUDA, and per backend when its ``supports`` says no (the reason is
the skip message). Backends are requested by name, so a backend not yet verified on this
family (``verified_on``) runs here: this file is how it becomes verified.

On the H200 (triton_kernels from vLLM 0.33's wheel, extracted to ``.tk``)::

    PYTHONPATH=.tk:. python -m pytest -q tests/test_backends_gpu.py

Pass criterion: relative L2 error < 1e-2 against the float32 reference backend.
"""

import pytest
import torch
from mxfp4_testing import random_layer, random_routing, rel_err

from mxfp4_plugin.method import Mxfp4MoEMethod
from mxfp4_plugin.platform import detect
from mxfp4_plugin.plugins import registered_backends
from mxfp4_plugin.spec import Activation, ActivationSpec, GateUpOrder, MoESpec, contiguous_expert_map

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

BACKENDS = ("triton_kernels", "flashinfer_cutlass", "flashinfer_trtllm", "flashinfer_trtllm_mxfp8", "marlin")
SWIGLU = ActivationSpec(Activation.SWIGLU_OAI, alpha=1.702, limit=7.0)
SILU = ActivationSpec(Activation.SILU)
TOLERANCE = 1e-2


@pytest.fixture(scope="module")
def platform():
    return detect("cuda")


def method_pair(spec, backend, platform, tensors):
    """(backend under test, reference), both loaded with the same canonical tensors on the GPU."""
    reason = registered_backends()[backend].supports(spec, platform)
    if reason is not None:
        pytest.skip(f"{backend}: {reason}")
    methods = []
    for name in (backend, "reference"):
        m = Mxfp4MoEMethod(spec, request=name, platform=platform)
        m.process_weights_after_loading({k: v.cuda() for k, v in tensors.items()})
        methods.append(m)
    return methods


def run_and_compare(spec, backend, platform, tokens, gen, *, global_ids=None):
    tensors = random_layer(spec.num_local_experts, spec.hidden_size, spec.intermediate_size, bias=spec.has_bias,
                           generator=gen)
    under_test, reference = method_pair(spec, backend, platform, tensors)
    x = torch.randn(tokens, spec.hidden_size, generator=gen).to(spec.act_dtype).cuda()
    weights, ids = random_routing(tokens, spec.num_experts, spec.top_k, generator=gen)
    if global_ids is not None:
        ids = global_ids(ids)
    weights, ids = weights.cuda(), ids.cuda()
    got = under_test(x, weights, ids)
    torch.cuda.synchronize()
    want = reference(x, weights, ids)
    assert got.shape == want.shape == (tokens, spec.hidden_size) and got.dtype == spec.act_dtype
    assert torch.isfinite(got).all()
    err = rel_err(got.float().cpu(), want.float().cpu())
    assert err < TOLERANCE, f"{backend}: relative error {err:.3e} >= {TOLERANCE} ({spec}, tokens={tokens})"
    return got, want


SHAPES = {  # (experts, hidden, intermediate)
    "gpt-oss-20b E32": (32, 2880, 2880),
    "gpt-oss E8": (8, 2880, 2880),
    "small E8 256x512": (8, 256, 512),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("tokens", [1, 7, 64, 1000])
def test_gpt_oss_layer(backend, shape, tokens, platform, gen):
    e, h, i = SHAPES[shape]
    spec = MoESpec(num_experts=e, top_k=4, hidden_size=h, intermediate_size=i, activation=SWIGLU, has_bias=True)
    run_and_compare(spec, backend, platform, tokens, gen)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("order", list(GateUpOrder))
@pytest.mark.parametrize("activation", [SWIGLU, SILU], ids=["swiglu_oai", "silu"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("tokens", [7, 64])
def test_variants(backend, order, activation, bias, tokens, platform, gen):
    spec = MoESpec(num_experts=8, top_k=2, hidden_size=256, intermediate_size=512, activation=activation,
                   gate_up_order=order, has_bias=bias)
    run_and_compare(spec, backend, platform, tokens, gen)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", ["small E8 256x512", "gpt-oss E8"])
@pytest.mark.parametrize("tokens", [1, 7, 64, 1000])
def test_expert_parallel_with_missing_experts(backend, shape, tokens, platform, gen):
    """EP rank 1 of 2: global experts 0..7 live elsewhere (-1 after the map). Every third
    token is routed only to remote experts and must come out exactly zero."""
    e_local, h, i = SHAPES[shape]
    e_global = 2 * e_local
    spec = MoESpec(num_experts=e_global, num_local_experts=e_local, top_k=4, hidden_size=h, intermediate_size=i,
                   activation=SWIGLU, has_bias=True, expert_map=contiguous_expert_map(e_global, 1, 2))

    def some_remote(ids):
        ids = ids.clone()
        ids[::3] = torch.arange(4, dtype=ids.dtype)  # experts 0..3: all on rank 0
        return ids

    got, want = run_and_compare(spec, backend, platform, tokens, gen, global_ids=some_remote)
    remote_only = torch.arange(tokens, device=got.device) % 3 == 0
    assert not got[remote_only].any(), f"{backend}: tokens with no local expert must give zeros"
    assert not want[remote_only].any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_tensor_parallel_padding_rows(backend, platform, gen):
    """gpt-oss TP=4, last rank: I_pp = 672 (not a multiple of 64/128), zero-padded by the backend."""
    spec = MoESpec(num_experts=8, top_k=4, hidden_size=2880, intermediate_size=672, activation=SWIGLU, has_bias=True)
    run_and_compare(spec, backend, platform, 64, gen)


@pytest.mark.parametrize("backend", BACKENDS)
def test_repeated_calls_are_stable(backend, platform, gen):
    """Same inputs twice (different batch sizes in between): same answer, no state leaks."""
    spec = MoESpec(num_experts=8, top_k=2, hidden_size=256, intermediate_size=512, activation=SWIGLU, has_bias=True)
    tensors = random_layer(8, 256, 512, bias=True, generator=gen)
    under_test, _ = method_pair(spec, backend, platform, tensors)
    x = torch.randn(33, 256, generator=gen).to(torch.bfloat16).cuda()
    w, ids = (t.cuda() for t in random_routing(33, 8, 2, generator=gen))
    first = under_test(x, w, ids).clone()
    under_test(x[:5], w[:5], ids[:5])
    again = under_test(x, w, ids)
    # FlashInfer's fused finalize sums with atomics, so the order (and last bits) may differ run to run
    assert rel_err(again.float().cpu(), first.float().cpu()) < 1e-3


def test_fp16_request_is_refused_by_triton_kernels(platform):
    spec = MoESpec(num_experts=8, top_k=2, hidden_size=256, intermediate_size=512, activation=SWIGLU,
                   act_dtype=torch.float16)
    assert registered_backends()["triton_kernels"].supports(spec, platform) is not None
