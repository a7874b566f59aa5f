"""Our Triton backend on a CUDA GPU against the reference backend (float32), fresh random data.

Skipped without CUDA. Covers the benchmark's layer shapes, sizes that are not multiples of
128 (nor of 64: 704 and 736, read unpadded), EP maps
with missing experts, both gate/up row orders, SiLU and SwiGLU-OAI, bias on and off, fp16,
both weight layouts, every launch configuration we ship or tune, and CUDA-graph replay.
"""

import functools

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

from mxfp4_plugin import (  # noqa: E402
    Activation, ActivationSpec, GateUpOrder, MoESpec, Mxfp4MoEMethod, ParallelLayout, Platform)
from mxfp4_plugin.backends.reference import ReferenceBackend  # noqa: E402
from mxfp4_plugin.backends.triton import TritonBackend  # noqa: E402
from mxfp4_plugin.bench import shapes as bench_shapes  # noqa: E402
from mxfp4_plugin.spec import contiguous_expert_map  # noqa: E402

SWIGLU = ActivationSpec(Activation.SWIGLU_OAI, alpha=1.702, limit=7.0)
SILU = ActivationSpec(Activation.SILU)
BF16_TOL = 2.0**-7  # the bf16 rounding of the intermediate activation and of the output
FP16_TOL = 2.0**-9


def rel_err(actual, expected):
    return float((actual.double() - expected.double()).norm() / expected.double().norm())


@functools.cache
def platform():
    from mxfp4_plugin.platform import detect

    return detect("cuda")


@functools.cache
def layer(spec: MoESpec, seed: int = 0):
    """(weights, reference backend, triton backend) for ``spec``, built once per session."""
    gen = torch.Generator("cuda").manual_seed(seed)
    weights = bench_shapes.random_weights(spec, torch.device("cuda"), gen)
    ref = ReferenceBackend(spec, platform())
    ref.prepare(weights)
    ours = TritonBackend(spec, platform())
    ours.prepare(weights)
    return weights, ref, ours


def inputs(spec: MoESpec, tokens: int, seed: int):
    gen = torch.Generator("cuda").manual_seed(seed)
    return bench_shapes.random_inputs(spec, tokens, torch.device("cuda"), gen)


def check(spec: MoESpec, tokens: int, seed: int = 1, tol: float = BF16_TOL):
    _, ref, ours = layer(spec)
    i = inputs(spec, tokens, seed)
    out = ours.forward(i.x, i.topk_weights, i.topk_ids)
    expected = ref.forward(i.x.float(), i.topk_weights, i.topk_ids)
    assert out.shape == (tokens, spec.hidden_size) and out.dtype == spec.act_dtype
    assert torch.isfinite(out).all()
    err = rel_err(out, expected)
    assert err < tol, f"relative error {err:.2e} >= {tol:.2e}"
    return out


@pytest.mark.parametrize("tokens", [1, 7, 64, 1000])
@pytest.mark.parametrize("shape", list(bench_shapes.SHAPES))
def test_benchmark_shapes(shape, tokens):
    check(bench_shapes.SHAPES[shape], tokens)


def small(activation=SWIGLU, order=GateUpOrder.INTERLEAVED, bias=True, dtype=torch.bfloat16, hidden=704,
          intermediate=736, experts=16, top_k=4):
    """704 = 22 x 32 and 736 = 23 x 32 (gpt-oss-120b's intermediate size per rank at TP4): neither
    is a multiple of 64 or 128, and the kernels read them unpadded."""
    return MoESpec(num_experts=experts, top_k=top_k, hidden_size=hidden, intermediate_size=intermediate,
                   activation=activation, gate_up_order=order, has_bias=bias, act_dtype=dtype)


@pytest.mark.parametrize("tokens", [1, 7, 64, 1000])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("order", list(GateUpOrder), ids=lambda o: o.value)
@pytest.mark.parametrize("activation", [SWIGLU, SILU], ids=["swiglu_oai", "silu"])
def test_orders_activations_bias_odd_sizes(activation, order, bias, tokens):
    check(small(activation, order, bias), tokens)


@pytest.mark.parametrize("tokens", [3, 300])
def test_float16_activations(tokens):
    check(small(dtype=torch.float16), tokens, tol=FP16_TOL)


@pytest.mark.parametrize("tokens", [2, 500])
@pytest.mark.parametrize("ep_rank", [0, 2])
def test_expert_parallel_map_with_missing_experts(ep_rank, tokens):
    """Through the method, as an engine drives it: global ids, a rank holding a third of the experts."""
    e, ep = 16, 3
    emap = contiguous_expert_map(e, ep_rank, ep)
    local = sum(1 for v in emap if v >= 0)
    spec = MoESpec(num_experts=e, num_local_experts=local, top_k=4, hidden_size=704, intermediate_size=736,
                   activation=SWIGLU, has_bias=True, expert_map=emap, parallel=ParallelLayout(ep_rank=ep_rank, ep_size=ep))
    gen = torch.Generator("cuda").manual_seed(5)
    weights = bench_shapes.random_weights(spec, torch.device("cuda"), gen)
    tensors = {f.name: getattr(weights, f.name) for f in weights.__dataclass_fields__.values()
               if getattr(weights, f.name) is not None}
    methods = {}
    for name in ("triton", "reference"):
        methods[name] = Mxfp4MoEMethod(spec, request=name, platform=platform())
        methods[name].process_weights_after_loading(tensors)
    i = bench_shapes.random_inputs(MoESpec(num_experts=e, top_k=4, hidden_size=704, intermediate_size=736,
                                           activation=SWIGLU, has_bias=True), tokens, torch.device("cuda"), gen)
    out = methods["triton"](i.x, i.topk_weights, i.topk_ids)
    expected = methods["reference"](i.x, i.topk_weights, i.topk_ids)  # bf16-rounded, same ids mapping
    assert rel_err(out, expected) < BF16_TOL
    all_remote = torch.tensor([g for g, l in enumerate(emap) if l < 0][:4], device="cuda", dtype=torch.int32)
    ids = i.topk_ids.clone()
    ids[0] = all_remote
    assert (methods["triton"](i.x, i.topk_weights, ids)[0] == 0).all()


@pytest.mark.parametrize("tokens", [4, 600])
def test_cuda_graph_replay_equals_eager(tokens):
    spec = small()
    _, _, ours = layer(spec)
    static = inputs(spec, tokens, 11)
    eager = ours.forward(static.x, static.topk_weights, static.topk_ids)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        ours.forward(static.x, static.topk_weights, static.topk_ids)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = ours.forward(static.x, static.topk_weights, static.topk_ids)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(captured, eager)
    fresh = inputs(spec, tokens, 12)  # new routing into the same buffers: the graph recomputes it
    static.x.copy_(fresh.x), static.topk_weights.copy_(fresh.topk_weights), static.topk_ids.copy_(fresh.topk_ids)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(captured, ours.forward(fresh.x, fresh.topk_weights, fresh.topk_ids))


@pytest.mark.parametrize("tokens", [5, 400])
def test_both_weight_layouts_agree_exactly(tokens):
    """BF16X2 (inline PTX) and NIBBLES decode to the same bf16 weights, so the results are identical."""
    from mxfp4_plugin.kernels.moe import fused_moe, prepare_experts
    from mxfp4_plugin.kernels.moe_details.layout import ValueLayout

    spec = small()
    weights, _, ours = layer(spec)
    assert ours.experts.layout is ValueLayout.BF16X2
    nibbles = prepare_experts(weights.w13_weight, weights.w13_weight_scale, weights.w2_weight, weights.w2_weight_scale,
                              weights.w13_bias, weights.w2_bias, interleaved=True, layout=ValueLayout.NIBBLES)
    i = inputs(spec, tokens, 21)
    a = fused_moe(i.x, i.topk_weights, i.topk_ids, ours.experts, spec.activation)
    b = fused_moe(i.x, i.topk_weights, i.topk_ids, nibbles, spec.activation)
    assert torch.equal(a, b)


def _all_configs():
    from mxfp4_plugin.kernels.moe_details import configs

    return list(dict.fromkeys([row[2] for row in configs.TABLE] + list(configs.CANDIDATES)))


def _table_rows():
    """``(bench shape name, tokens)`` per TABLE row: the row's own layer (ANY rows: gpt-oss-120b's, which has no
    rows of its own) at the most tokens it serves (past 4096: 5000), so every shipped launch runs at the K and N it
    was tuned for (gpt-oss's K = 2880 takes the whole-step loops without masks)."""
    from mxfp4_plugin.kernels.moe_details import configs

    by_key = {(s.num_experts, s.top_k, s.hidden_size, s.intermediate_size): name
              for name, s in bench_shapes.SHAPES.items()}
    assert configs.GPT_OSS_120B not in {key for key, _, _ in configs.TABLE}, "ANY rows stand for gpt-oss-120b here"
    return [(by_key[key] if key is not configs.ANY else "gpt-oss-120b", min(max_tokens, 5000))
            for key, max_tokens, _ in configs.TABLE]


@pytest.mark.parametrize("shape, tokens", _table_rows())
def test_every_table_row_on_its_shape(shape, tokens):
    check(bench_shapes.SHAPES[shape], tokens)


@pytest.mark.parametrize("config", _all_configs(), ids=lambda c: c.describe().replace(" ", "_"))
def test_every_shipped_and_candidate_config(config):
    from mxfp4_plugin.kernels.moe import fused_moe

    spec = small()
    _, ref, ours = layer(spec)
    for tokens in (3, 130):
        i = inputs(spec, tokens, 31)
        out = fused_moe(i.x, i.topk_weights, i.topk_ids, ours.experts, spec.activation, config=config)
        assert rel_err(out, ref.forward(i.x.float(), i.topk_weights, i.topk_ids)) < BF16_TOL


def test_oracle_ranks_triton_here_as_measured():
    """Hopper: ours first (BENCHMARKS.md round 12), triton_kernels next where it is installed;
    both verified on sm90."""
    from mxfp4_plugin import choose

    here = platform()
    decision = choose(small(), here)
    assert decision.name == "triton"
    if "triton_kernels" in here.packages:
        assert {c.backend: c.verdict for c in decision.candidates}["triton_kernels"] == "supported"


@pytest.mark.parametrize("tokens", [1, 300])
def test_scales_outside_the_fold_range_keep_two_multiplies(tokens):
    """Block scales above 2 (bytes > 128) cannot carry the 2**126 in one bf16 factor: that tensor
    decodes with two multiplies, the other (scales in range) with one; both exact."""
    import dataclasses

    spec = small()
    weights, _, ours_default = layer(spec)
    assert ours_default.experts.fold13 and ours_default.experts.fold2
    gen = torch.Generator("cuda").manual_seed(5)
    big = torch.randint(120, 136, weights.w2_weight_scale.shape, generator=gen, device="cuda", dtype=torch.int32)
    weights = dataclasses.replace(weights, w2_weight_scale=big.to(torch.uint8))
    ref = ReferenceBackend(spec, platform())
    ref.prepare(weights)
    ours = TritonBackend(spec, platform())
    ours.prepare(weights)
    assert ours.experts.fold13 and not ours.experts.fold2
    i = inputs(spec, tokens, 41)
    out = ours.forward(i.x, i.topk_weights, i.topk_ids)
    assert rel_err(out, ref.forward(i.x.float(), i.topk_weights, i.topk_ids)) < BF16_TOL


def test_a_tuned_rows_file_runs_its_config_and_matches_reference(tmp_path, monkeypatch):
    """``MXFP4_PLUGIN_MOE_CONFIGS``: the backend runs the file's config where its row covers the count (a decode
    config at 40 tokens, where the table groups), and the result is the reference's."""
    from mxfp4_plugin.backends.triton import layer_key
    from mxfp4_plugin.kernels.moe_details import configs, tuned_rows

    spec = small()
    weights, ref, _ = layer(spec)
    decode = configs.select(1, layer_key(spec))
    assert configs.select(40, layer_key(spec)).grouped and not decode.grouped
    path = str(tmp_path / "rows.json")
    tuned_rows.dump([tuned_rows.TunedRow(layer_key(spec), 33, 48, decode)], path)
    monkeypatch.setenv(tuned_rows.ENV_VAR, path)
    ours = TritonBackend(spec, platform())
    ours.prepare(weights)
    assert ours.row_for(40) == (decode, 33, 48)
    i = inputs(spec, 40, 41)
    out = ours.forward(i.x, i.topk_weights, i.topk_ids)
    assert rel_err(out, ref.forward(i.x.float(), i.topk_weights, i.topk_ids)) < BF16_TOL
