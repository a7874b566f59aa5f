"""One gpt-oss-20b-sized MoE layer (32 experts, top-4, H = I = 2880) through the plugin's
method on random MXFP4 weights: prints the backend, the reason, the time of a forward and
its error against the same layer computed in float64."""

import time

import torch

from mxfp4_plugin import Mxfp4MoEMethod, mx
from mxfp4_plugin.activations import gated_activation
from mxfp4_plugin.models import spec_from_hf_config

CONFIG = {"model_type": "gpt_oss", "num_local_experts": 32, "num_experts_per_tok": 4, "hidden_size": 2880,
          "intermediate_size": 2880, "swiglu_limit": 7.0}
TOKENS = 4


def main() -> None:
    g = torch.Generator().manual_seed(int(time.time()))
    spec = spec_from_hf_config(CONFIG)
    method = Mxfp4MoEMethod(spec)
    print(method.decision.summary())
    tensors = method.allocate()
    for name, t in tensors.items():
        if name.endswith("_scale"):
            t.copy_(torch.randint(119, 124, t.shape, dtype=torch.uint8, generator=g))
        elif name.endswith("_weight"):
            t.copy_(torch.randint(0, 256, t.shape, dtype=torch.uint8, generator=g))
        else:
            t.copy_(torch.randn(t.shape, generator=g).to(t.dtype))
    method.process_weights_after_loading(tensors)

    x = torch.randn(TOKENS, spec.hidden_size, generator=g).to(spec.act_dtype)
    topk_w, topk_ids = torch.topk(torch.randn(TOKENS, spec.num_experts, generator=g), spec.top_k, dim=-1)
    topk_w = torch.softmax(topk_w, dim=-1)
    start = time.perf_counter()
    out = method(x, topk_w, topk_ids)
    elapsed = time.perf_counter() - start

    ref = torch.zeros(TOKENS, spec.hidden_size, dtype=torch.float64)
    for t in range(TOKENS):
        for slot in range(spec.top_k):
            e = int(topk_ids[t, slot])
            w13 = mx.dequantize(tensors["w13_weight"][e], tensors["w13_weight_scale"][e], torch.float64)
            w2 = mx.dequantize(tensors["w2_weight"][e], tensors["w2_weight_scale"][e], torch.float64)
            h = w13 @ x[t].double() + tensors["w13_bias"][e].double()
            y = w2 @ gated_activation(h, spec.activation, spec.gate_up_order) + tensors["w2_bias"][e].double()
            ref[t] += float(topk_w[t, slot]) * y
    err = float((out.double() - ref).norm() / ref.norm())
    print(f"layer: {TOKENS} tokens x {spec.num_experts} experts (top-{spec.top_k}), H = I = {spec.hidden_size}: "
          f"forward {elapsed * 1e3:.1f} ms on {method.platform.family}, relative error vs float64 {err:.2e} "
          f"(bf16 output rounding is ~2e-3)")


if __name__ == "__main__":
    main()
