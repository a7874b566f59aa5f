"""Runs our Triton MoE kernels under the Triton interpreter on CPU and prints one JSON line
per case: its name, the relative error against the float64 loop, and any failure.

Run by ``test_triton_interpreter.py`` in a subprocess, because ``TRITON_INTERPRET`` must be
set before triton is imported and must not leak into other tests. Shapes are tiny: an
interpreted program takes tens of milliseconds.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import zlib

if __name__ == "__main__":  # before triton is imported; importing this module sets nothing
    os.environ["TRITON_INTERPRET"] = "1"

#: name -> (experts, top_k, hidden, intermediate, tokens, act dtype, activation, gate/up order, bias,
#: launch config ("decode", "grouped", or None: the backend's own choice), remote entries).
#: ``remote``: how many (token, slot) entries get id -1 (experts on another rank).
CASES = {
    "fp16_decode_swiglu_interleaved_bias_m1": (4, 2, 128, 64, 1, "float16", "swiglu_oai", "interleaved", True, "decode", 0),
    "fp16_grouped_silu_concatenated_nobias_m7": (5, 2, 128, 64, 7, "float16", "silu", "concatenated", False, "grouped", 0),
    "bf16_decode_silu_concatenated_bias_m3": (4, 3, 128, 64, 3, "bfloat16", "silu", "concatenated", True, "decode", 0),
    "bf16_grouped_swiglu_interleaved_bias_m33": (4, 2, 128, 64, 33, "bfloat16", "swiglu_oai", "interleaved", True, "grouped", 0),
    "bf16_decode_ep_remote_ids_m5": (6, 3, 128, 64, 5, "bfloat16", "swiglu_oai", "interleaved", True, "decode", 6),
    "bf16_grouped_ep_remote_ids_m9": (6, 3, 128, 64, 9, "bfloat16", "swiglu_oai", "interleaved", True, "grouped", 10),
    "fp16_grouped_ragged_k_and_n_h192_i96": (3, 2, 192, 96, 5, "float16", "swiglu_oai", "interleaved", True, "grouped", 0),
    "bf16_decode_ragged_k_and_n_h192_i96": (3, 2, 192, 96, 2, "bfloat16", "silu", "concatenated", False, "decode", 0),
    # block scales converted where they are loaded (both GEMMs, split GEMM1 too; ragged K masks some scales)
    "fp16_decode_scales_at_load_split_ragged_h192_i96": (3, 2, 192, 96, 2, "float16", "swiglu_oai", "interleaved", True,
                                                         "decode_scales_at_load", 0),
    "bf16_grouped_scales_at_load_joint_tail_h192_i96": (3, 2, 192, 96, 24, "bfloat16", "silu", "concatenated", False,
                                                        "grouped_scales_at_load", 0),
    # GEMM2 split over K in 4 (96 = 3 steps of 32: one split is empty); bias added once
    "bf16_decode_split_k_ragged_bias_h192_i96": (3, 2, 192, 96, 2, "bfloat16", "swiglu_oai", "interleaved", True,
                                                 "decode_split", 0),
    # GEMM1 split over K in 4 too (192 = 3 steps of 64: one split empty), its bias and gating after the sum;
    # EP: remote pairs skipped by the gating pass as by the GEMMs
    "bf16_decode_split_gemm1_ragged_bias_ep_h192_i96": (3, 2, 192, 96, 3, "bfloat16", "swiglu_oai", "interleaved",
                                                        True, "decode_split_both", 2),
    "fp16_decode_split_gemm1_silu_nobias_h192_i96": (3, 2, 192, 96, 2, "float16", "silu", "concatenated", False,
                                                     "decode_split_both", 0),
    # tokens as the MMA's A operand, decoded weights as B (the large-token-tile orientation)
    "bf16_grouped_tokens_as_a_ragged_h192_i96": (3, 2, 192, 96, 5, "bfloat16", "swiglu_oai", "interleaved", True,
                                                 "grouped_tokens_as_a", 0),
    # gate and up rows as one MMA operand (JOINT), N not a multiple of the block: masked rows
    "bf16_grouped_joint_gate_up_ragged_h192_i96": (3, 2, 192, 96, 6, "bfloat16", "swiglu_oai", "interleaved", True,
                                                   "grouped_joint", 0),
    "fp16_grouped_joint_tokens_as_a_silu_h192_i96": (3, 2, 192, 96, 6, "float16", "silu", "concatenated", False,
                                                     "grouped_joint_tokens_as_a", 0),
    # the decode path with gate and up rows as one MMA operand (JOINT), scales at load, N not a multiple of the
    # block: masked rows
    "bf16_decode_joint_scales_at_load_ragged_h192_i96": (3, 2, 192, 96, 3, "bfloat16", "swiglu_oai", "interleaved",
                                                         True, "decode_joint", 0),
    "fp16_decode_joint_silu_ep_h192_i96": (3, 2, 192, 96, 4, "float16", "silu", "concatenated", False,
                                           "decode_joint", 3),
    # activations prefetched a K step ahead in registers (the other loop of _mma_loop)
    "bf16_decode_prefetch_x_ragged_h192_i96": (3, 2, 192, 96, 3, "bfloat16", "swiglu_oai", "interleaved", True,
                                               "decode_prefetch_x", 0),
    # blocks of 32 pairs; those holding at most 16 (an expert's last) run the 16-column MMA
    "bf16_grouped_small_m_ragged_h192_i96": (3, 2, 192, 96, 48, "bfloat16", "swiglu_oai", "interleaved", True,
                                             "grouped_small_m", 0),
    "fp16_grouped_small_m_joint_tokens_as_a_h192_i96": (3, 2, 192, 96, 48, "float16", "silu", "concatenated", False,
                                                        "grouped_small_m_joint_tokens_as_a", 0),
    # an expert's last block takes up to 16 pairs past the block's 16 (a second MMA on the same decoded
    # weights); with blocks of 32, those of at most 16 pairs on the narrow MMA too; every width must run.
    # "apart": that GEMM runs the blocks with a tail in a second launch (GEMM1's with a config of its own)
    "bf16_grouped_tail_gemm1_apart_ragged_h192_i96": (3, 2, 192, 96, 24, "bfloat16", "swiglu_oai", "interleaved",
                                                      True, "grouped_tail_gemm1_apart", 0),
    "fp16_grouped_small_m_tail_joint_px_h192_i96": (5, 2, 192, 96, 70, "float16", "silu", "concatenated", False,
                                                    "grouped_small_m_tail_joint_px", 0),
    "bf16_grouped_tail_gemm2_apart_tokens_as_a_ep_h192_i96": (3, 2, 192, 96, 30, "bfloat16", "swiglu_oai",
                                                              "interleaved", True,
                                                              "grouped_tail_gemm2_apart_tokens_as_a", 9),
    # GEMM2's per-pair results stored in the activation dtype (the prefill rows' partials), summed in float32;
    # fp16 (the interpreter stores bf16 by truncation, not rounding as the GPU does: its bound is the GPU tests')
    "fp16_grouped_partials_in_act_dtype_ep_h192_i96": (3, 3, 192, 96, 24, "float16", "swiglu_oai", "interleaved",
                                                       True, "grouped_partials_in_act_dtype", 5),
    # each K step in two parts (block_k + block_k2): K a multiple of the sum (whole steps, no masks on the words), or
    # not (a last partial step, masked); prefetched activations, split K, gate and up rows apart or joint, a tail
    "bf16_grouped_plus_joint_px_tail_h192_i96": (3, 2, 192, 96, 24, "bfloat16", "swiglu_oai", "interleaved", True,
                                                 "grouped_plus_joint_px_tail", 0),
    "fp16_decode_plus_split_ragged_h224_i96": (3, 2, 224, 96, 3, "float16", "silu", "concatenated", True,
                                               "decode_plus_split", 0),
    "bf16_grouped_plus_tokens_as_a_ragged_ep_h224_i160": (4, 2, 224, 160, 9, "bfloat16", "swiglu_oai", "interleaved",
                                                          False, "grouped_plus_tokens_as_a", 3),
    "bf16_backend_default_config_m4": (4, 2, 128, 64, 4, "bfloat16", "swiglu_oai", "interleaved", True, None, 0),
}
#: router logit offsets per expert for cases that need hot and cold experts (blocks of every width)
SKEW = {"fp16_grouped_small_m_tail_joint_px_h192_i96": [1.0, 0.0, 0.0, 0.0, -1.5]}
ROUTING_CASE = "routing_groups_every_local_pair_once"


def run_case(name: str) -> dict:
    import torch

    from mxfp4_plugin import Activation, ActivationSpec, GateUpOrder, MoESpec, Platform
    from mxfp4_plugin.backends.triton import TritonBackend
    from mxfp4_plugin.kernels.moe import fused_moe, prepare_experts
    from mxfp4_plugin.kernels.moe_details.configs import GemmConfig, MoEConfig
    from mxfp4_plugin.weights import MoEWeights
    from mxfp4_testing import moe_f64, random_layer, random_routing, rel_err

    e, k, h, i, m, dtype_name, act_name, order, bias, config_name, remote = CASES[name]
    dtype = getattr(torch, dtype_name)
    act = (ActivationSpec(Activation.SWIGLU_OAI, alpha=1.702, limit=7.0) if act_name == "swiglu_oai"
           else ActivationSpec(Activation.SILU))
    config = {"decode": MoEConfig(False, 16, GemmConfig(32, 64, 4, 1), GemmConfig(16, 128, 4, 1)),
              "grouped": MoEConfig(True, 16, GemmConfig(16, 128, 4, 1), GemmConfig(32, 64, 4, 1)),
              "grouped_tokens_as_a": MoEConfig(True, 16, GemmConfig(16, 128, 4, 1, weights_as_a=False),
                                               GemmConfig(32, 64, 4, 1, weights_as_a=False)),
              "decode_split": MoEConfig(False, 16, GemmConfig(32, 64, 4, 1), GemmConfig(16, 32, 4, 1, split_k=4)),
              "decode_split_both": MoEConfig(False, 16, GemmConfig(32, 64, 4, 1, split_k=4, prefetch_x=True),
                                             GemmConfig(16, 32, 4, 1, split_k=2)),
              "grouped_joint": MoEConfig(True, 16, GemmConfig(64, 64, 4, 1, joint=True), GemmConfig(32, 64, 4, 1)),
              "grouped_joint_tokens_as_a": MoEConfig(True, 16, GemmConfig(64, 64, 4, 1, False, joint=True),
                                                     GemmConfig(32, 64, 4, 1, False)),
              "decode_scales_at_load": MoEConfig(False, 16, GemmConfig(32, 64, 4, 1, split_k=2, prefetch_x=True,
                                                                  scales_at_load=True),
                                                 GemmConfig(16, 128, 4, 1, prefetch_x=True, scales_at_load=True)),
              "grouped_scales_at_load": MoEConfig(True, 16, GemmConfig(32, 64, 4, 1, joint=True, scales_at_load=True),
                                                  GemmConfig(32, 64, 4, 1, scales_at_load=True), tail_m=16),
              "decode_joint": MoEConfig(False, 16, GemmConfig(64, 64, 4, 1, joint=True, prefetch_x=True,
                                                          scales_at_load=True),
                                        GemmConfig(32, 64, 4, 1, prefetch_x=True, scales_at_load=True)),
              "decode_prefetch_x": MoEConfig(False, 16, GemmConfig(32, 64, 4, 1, prefetch_x=True),
                                             GemmConfig(16, 128, 4, 1, prefetch_x=True)),
              "grouped_small_m": MoEConfig(True, 32, GemmConfig(16, 128, 4, 1), GemmConfig(32, 64, 4, 1), small_m=16),
              "grouped_small_m_joint_tokens_as_a": MoEConfig(True, 32, GemmConfig(64, 64, 4, 1, False, joint=True),
                                                             GemmConfig(32, 64, 4, 1, False), small_m=16),
              "grouped_tail_gemm1_apart": MoEConfig(True, 16, GemmConfig(16, 128, 4, 1, tail_launch=GemmConfig(32, 64, 4, 1)),
                                                    GemmConfig(32, 64, 4, 1), tail_m=16),
              "grouped_small_m_tail_joint_px": MoEConfig(True, 32, GemmConfig(32, 64, 4, 1, joint=True, prefetch_x=True),
                                                         GemmConfig(32, 64, 4, 1, prefetch_x=True), small_m=16,
                                                         tail_m=16),
              "grouped_tail_gemm2_apart_tokens_as_a": MoEConfig(
                  True, 16, GemmConfig(16, 128, 4, 1, weights_as_a=False),
                  GemmConfig(32, 64, 4, 1, weights_as_a=False, tail_launch=GemmConfig(32, 64, 4, 1, weights_as_a=False)),
                  tail_m=16),
              "grouped_partials_in_act_dtype": MoEConfig(True, 16, GemmConfig(32, 64, 4, 1, joint=True),
                                                         GemmConfig(32, 64, 4, 1),
                                                         partials_in_act_dtype=True),
              "grouped_plus_joint_px_tail": MoEConfig(
                  True, 16, GemmConfig(32, 64, 4, 1, joint=True, prefetch_x=True, block_k2=32),
                  GemmConfig(32, 64, 4, 1, prefetch_x=True, scales_at_load=True, block_k2=32), tail_m=16),
              "decode_plus_split": MoEConfig(False, 16, GemmConfig(32, 64, 4, 1, split_k=2, prefetch_x=True, block_k2=32),
                                             GemmConfig(16, 64, 4, 1, split_k=2, block_k2=32)),
              "grouped_plus_tokens_as_a": MoEConfig(True, 16, GemmConfig(16, 64, 4, 1, False, block_k2=32),
                                                    GemmConfig(32, 64, 4, 1, False, scales_at_load=True, block_k2=32)),
              None: None}[config_name]
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    tensors = random_layer(e, h, i, bias=bias, act_dtype=dtype, generator=gen)
    x = torch.randn(m, h, generator=gen).to(dtype)
    weights, ids = random_routing(m, e, k, generator=gen, expert_bias=SKEW.get(name))
    if remote:
        flat = ids.view(-1)
        flat[torch.randperm(flat.numel(), generator=gen)[:remote]] = -1
        ids[0] = -1  # one token with every expert elsewhere: its output is exactly zero
    interleaved = order == "interleaved"
    if config is None:  # through the backend, as the method drives it; a CUDA-less platform
        spec = MoESpec(num_experts=e, top_k=k, hidden_size=h, intermediate_size=i, activation=act,
                       gate_up_order=GateUpOrder(order), has_bias=bias, act_dtype=dtype)
        backend = TritonBackend(spec, Platform("cpu", packages=frozenset({"triton"})))
        backend.prepare(MoEWeights.from_tensors(spec, tensors))
        out = backend.forward(x, weights, ids)
    else:
        experts = prepare_experts(tensors["w13_weight"], tensors["w13_weight_scale"], tensors["w2_weight"],
                                  tensors["w2_weight_scale"], tensors.get("w13_bias"), tensors.get("w2_bias"),
                                  interleaved=interleaved, act_dtype=dtype)
        out = fused_moe(x, weights, ids, experts, act, config=config)
    ref = moe_f64(x, tensors, weights, torch.where(ids < 0, e, ids), activation=act.kind.value, alpha=act.alpha,
                  limit=act.limit, interleaved=interleaved, expert_map=list(range(e)) + [-1])
    result = {"name": name, "rel_err": rel_err(out, ref), "dtype": dtype_name,
              "shape_ok": tuple(out.shape) == (m, h) and out.dtype == dtype, "finite": bool(torch.isfinite(out).all())}
    if remote:
        result["all_remote_row_zero"] = bool((out[0] == 0).all())
    if config is not None and (config.small_m or config.tail_m):  # every program the config has must have run
        wanted = {name for name, used in (("wide", True), ("narrow", config.small_m), ("tail", config.tail_m)) if used}
        result["block_widths_run"] = sorted(_block_widths(ids, e, config))
        result["every_block_width_ran"] = set(result["block_widths_run"]) == wanted
    return result


def _block_widths(ids, num_experts: int, config) -> set[str]:
    """Which of the grouped GEMMs' programs the routing of ``ids`` runs (gemm.py's dispatch)."""
    from mxfp4_plugin.kernels.moe_details import routing

    groups = routing.group_by_expert(ids.reshape(-1), num_experts, config.block_m, config.tail_m)
    rows = groups.block_rows[groups.block_expert >= 0]
    ran = {"narrow": (rows <= config.small_m).any(), "tail": (rows > config.block_m).any(),
           "wide": ((rows > config.small_m) & (rows <= config.block_m)).any()}
    return {name for name, any_block in ran.items() if bool(any_block)}


def run_routing_case() -> dict:
    """Every local pair placed exactly once, in a block of its own expert, and no other; each
    expert's blocks full but its last, which holds the rest (with ``tail_m``, up to ``tail_m``
    past ``block_m``) in as few blocks as that allows."""
    import torch

    from mxfp4_plugin.kernels.moe_details import routing

    gen = torch.Generator().manual_seed(7)
    small = torch.randint(-1, 5, (41,), generator=gen, dtype=torch.int32)
    small[3] = -1
    small[20:29] = 2  # expert 2: blocks with a tail
    # several programs of the place kernel (routing.SCATTER_BLOCK pairs each), unused experts
    wide = torch.randint(-1, 37, (300,), generator=gen, dtype=torch.int32)
    wide[100:150] = 30
    cases = [(small, 5, bm, tm) for bm, tm in ((4, 0), (4, 4), (2, 8))]
    cases += [(wide, 40, bm, tm) for bm, tm in ((16, 0), (8, 8), (4, 2))]
    for ids, e, block_m, tail_m in cases:
        counts = torch.bincount(ids[ids >= 0], minlength=e).tolist()
        groups = routing.group_by_expert(ids, e, block_m, tail_m)
        places = block_m + tail_m
        seen, blocks = [], {}
        for b in range(groups.max_blocks):
            expert, rows = int(groups.block_expert[b]), int(groups.block_rows[b])
            if expert < 0:
                assert rows == 0, f"unused block {b} has {rows} rows"
                continue
            blocks.setdefault(expert, []).append(rows)
            pairs = groups.sorted_pairs[b * places: b * places + rows].tolist()
            assert all(int(ids[p]) == expert for p in pairs), f"block {b} of expert {expert} holds {pairs}"
            seen += pairs
        expected = sorted(p for p in range(ids.numel()) if ids[p] >= 0)
        assert sorted(seen) == expected, f"placed {sorted(seen)}, expected {expected} (block_m {block_m})"
        for expert, count in enumerate(counts):
            rows = blocks.get(expert, [])
            n = max(-(-(count - tail_m) // block_m), min(count, 1))
            assert len(rows) == n and all(r == block_m for r in rows[:-1]) and sum(rows) == count, (
                f"expert {expert} with {count} pairs got blocks of {rows} (block_m {block_m}, tail_m {tail_m})")
    return {"name": ROUTING_CASE, "rel_err": 0.0, "shape_ok": True, "finite": True}


def main(names: list[str]) -> None:
    for name in names:
        try:
            result = run_routing_case() if name == ROUTING_CASE else run_case(name)
        except Exception:  # reported per case, so one failure does not hide the others
            result = {"name": name, "error": traceback.format_exc()}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1:] or [*CASES, ROUTING_CASE])
