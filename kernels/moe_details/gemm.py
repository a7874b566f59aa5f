"""The two expert GEMMs and the top-k reduction (Triton kernels).

Both GEMMs compute the transposed product ``acc[n, m] = sum_k W[n, k] * X[m, k]``: the
weights, decoded in registers, are the MMA's A operand (the big one), the few tokens routed
to an expert are its B operand, so small token counts still fill the MMA's M dimension.
One program owns ``BLOCK_N`` output rows of one expert for up to ``BLOCK_M`` (token, slot)
pairs and loops over K; weights are read once per program, never copied.

Which pairs a program serves (``GROUPED``):
* grouped (prefill): block ``b`` of the expert-sorted pair list from ``routing.py``;
* not grouped (decode): GEMM1 serves one pair per program; GEMM2 one token per program,
  summing its top-k experts in registers (no reduction pass, no atomics).

Pairs are indexed ``p = token * top_k + slot``. GEMM1 writes the activated intermediate
``act[p, :I]``; grouped GEMM2 writes ``y[p, :H]`` (router weight applied, float32) and
``reduce_topk_kernel`` sums each token's slots. Local expert id -1 contributes nothing.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .dequant import load_weight_tile

SILU: tl.constexpr = tl.constexpr(0)
SWIGLU_OAI: tl.constexpr = tl.constexpr(1)


@triton.jit
def _block_rows(pid_b, ids_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr,
                BLOCK_M: tl.constexpr, GROUPED: tl.constexpr):
    """(expert, pair index per column, column valid) for block ``pid_b``."""
    offs_m = tl.arange(0, BLOCK_M)
    if GROUPED:
        expert = tl.load(block_expert_ptr + pid_b)
        valid = offs_m < tl.load(block_rows_ptr + pid_b)
        pair = tl.load(sorted_ptr + pid_b * BLOCK_M + offs_m, mask=valid, other=0)
    else:
        expert = tl.load(ids_ptr + pid_b).to(tl.int32)
        valid = offs_m == 0
        pair = tl.zeros((BLOCK_M,), tl.int32) + pid_b
    return expert, pair, valid


@triton.jit
def _mma_loop(x_ptrs, valid_m, k_true, k_pad,
              w_ptrs, s_ptrs, w2_ptrs, s2_ptrs, mask_n, acc, acc2,
              DUAL: tl.constexpr, LAYOUT: tl.constexpr, DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
              BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """K loop. ``x_ptrs [BLOCK_K//2, BLOCK_M]`` point at the activations that meet the low
    nibbles of the first tile (the high nibbles meet those 32 elements further). ``DUAL``:
    a second weight stream (``w2_ptrs``, ``s2_ptrs`` -> ``acc2``) shares the activations."""
    KB: tl.constexpr = BLOCK_K // 2
    NC: tl.constexpr = BLOCK_K // 64
    offs_j = tl.arange(0, KB)
    elem_lo = (offs_j // 32) * 64 + (offs_j % 32)
    chunk_of_byte = (offs_j // 32) * 64
    chunk = tl.arange(0, NC) * 64
    for k0 in range(0, k_pad, BLOCK_K):
        mask_k = (k0 + chunk_of_byte) < k_pad
        mask_c = (k0 + chunk) < k_pad
        e_lo = k0 + elem_lo
        x_lo = tl.load(x_ptrs + k0, mask=valid_m[None, :] & (e_lo < k_true)[:, None], other=0.0).to(DOT_DTYPE)
        x_hi = tl.load(x_ptrs + (k0 + 32), mask=valid_m[None, :] & (e_lo + 32 < k_true)[:, None],
                       other=0.0).to(DOT_DTYPE)
        w_lo, w_hi = load_weight_tile(w_ptrs + k0 // 2, s_ptrs + k0 // 32, mask_n, mask_k, mask_c,
                                      BLOCK_N, BLOCK_K, LAYOUT, DOT_DTYPE)
        acc = tl.dot(w_lo, x_lo, acc, input_precision=PRECISION)
        acc = tl.dot(w_hi, x_hi, acc, input_precision=PRECISION)
        if DUAL:
            v_lo, v_hi = load_weight_tile(w2_ptrs + k0 // 2, s2_ptrs + k0 // 32, mask_n, mask_k, mask_c,
                                          BLOCK_N, BLOCK_K, LAYOUT, DOT_DTYPE)
            acc2 = tl.dot(v_lo, x_lo, acc2, input_precision=PRECISION)
            acc2 = tl.dot(v_hi, x_hi, acc2, input_precision=PRECISION)
    return acc, acc2


@triton.jit
def _tile_pointers(w_ptr, s_ptr, expert, stride_we, stride_wn, stride_se, stride_sn, offs_n,
                   BLOCK_K: tl.constexpr):
    offs_j = tl.arange(0, BLOCK_K // 2)
    offs_c = tl.arange(0, BLOCK_K // 64)
    w_ptrs = w_ptr + expert.to(tl.int64) * stride_we + offs_n[:, None] * stride_wn + offs_j[None, :]
    s_ptrs = s_ptr + expert.to(tl.int64) * stride_se + offs_n[:, None] * stride_sn + 2 * offs_c[None, :]
    return w_ptrs, s_ptrs


@triton.jit
def _activation_pointers(base_ptr, rows, stride, BLOCK_K: tl.constexpr):
    """[BLOCK_K//2, BLOCK_M] pointers to the low-nibble activations of the first K tile."""
    offs_j = tl.arange(0, BLOCK_K // 2)
    elem_lo = (offs_j // 32) * 64 + (offs_j % 32)
    return base_ptr + rows[None, :].to(tl.int64) * stride + elem_lo[:, None]


@triton.jit
def _gated(gate, up, alpha, limit, ACTIVATION: tl.constexpr):
    if ACTIVATION == SWIGLU_OAI:
        gate = tl.minimum(gate, limit)
        up = tl.minimum(tl.maximum(up, -limit), limit)
        out = (up + 1.0) * gate * tl.sigmoid(alpha * gate)
    else:
        out = gate * tl.sigmoid(gate) * up
    return out


@triton.jit
def gemm1_kernel(x_ptr, stride_xm, w_ptr, s_ptr, b_ptr, stride_we, stride_wn, stride_se, stride_sn, stride_be,
                 act_ptr, stride_am, ids_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr,
                 top_k, n_half, k_true, k_pad, alpha, limit,
                 GROUPED: tl.constexpr, ACTIVATION: tl.constexpr, HAS_BIAS: tl.constexpr, LAYOUT: tl.constexpr,
                 DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
                 BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    """x [M, H] -> act [M*top_k, I]: gate rows ``n`` and up rows ``I + n`` of w13, bias, gating."""
    pid = tl.program_id(0)
    num_n = tl.cdiv(n_half, BLOCK_N)
    pid_n = pid % num_n
    pid_b = pid // num_n
    expert, pair, valid_m = _block_rows(pid_b, ids_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr,
                                        BLOCK_M, GROUPED)
    if expert >= 0:
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        mask_n = offs_n < n_half
        wg_ptrs, sg_ptrs = _tile_pointers(w_ptr, s_ptr, expert, stride_we, stride_wn, stride_se, stride_sn,
                                          offs_n, BLOCK_K)
        x_ptrs = _activation_pointers(x_ptr, pair // top_k, stride_xm, BLOCK_K)
        acc_g = tl.zeros((BLOCK_N, BLOCK_M), tl.float32)
        acc_u = tl.zeros((BLOCK_N, BLOCK_M), tl.float32)
        acc_g, acc_u = _mma_loop(x_ptrs, valid_m, k_true, k_pad, wg_ptrs, sg_ptrs,
                                 wg_ptrs + n_half * stride_wn, sg_ptrs + n_half * stride_sn, mask_n, acc_g, acc_u,
                                 True, LAYOUT, DOT_DTYPE, PRECISION, BLOCK_N, BLOCK_K)
        if HAS_BIAS:
            b_row = b_ptr + expert.to(tl.int64) * stride_be + offs_n
            acc_g += tl.load(b_row, mask=mask_n, other=0.0)[:, None]
            acc_u += tl.load(b_row + n_half, mask=mask_n, other=0.0)[:, None]
        out = _gated(acc_g, acc_u, alpha, limit, ACTIVATION)
        out_ptrs = act_ptr + pair[None, :].to(tl.int64) * stride_am + offs_n[:, None]
        tl.store(out_ptrs, out.to(act_ptr.dtype.element_ty), mask=mask_n[:, None] & valid_m[None, :])


@triton.jit
def gemm2_kernel(a_ptr, stride_am, w_ptr, s_ptr, b_ptr, stride_we, stride_wn, stride_se, stride_sn, stride_be,
                 out_ptr, stride_om, ids_ptr, weights_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr,
                 top_k, n_out, k_true, k_pad,
                 GROUPED: tl.constexpr, HAS_BIAS: tl.constexpr, LAYOUT: tl.constexpr,
                 DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
                 BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    """act [M*top_k, I] -> grouped: y [M*top_k, H] float32, router weight applied;
    not grouped: out [M, H], the weighted sum over the token's top-k experts."""
    pid = tl.program_id(0)
    num_n = tl.cdiv(n_out, BLOCK_N)
    pid_n = pid % num_n
    pid_b = pid // num_n
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < n_out
    zero = tl.zeros((BLOCK_N, BLOCK_M), tl.float32)
    if GROUPED:
        expert, pair, valid_m = _block_rows(pid_b, ids_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr,
                                            BLOCK_M, True)
        if expert >= 0:
            w_ptrs, s_ptrs = _tile_pointers(w_ptr, s_ptr, expert, stride_we, stride_wn, stride_se, stride_sn,
                                            offs_n, BLOCK_K)
            a_ptrs = _activation_pointers(a_ptr, pair, stride_am, BLOCK_K)
            acc, _ = _mma_loop(a_ptrs, valid_m, k_true, k_pad, w_ptrs, s_ptrs, w_ptrs, s_ptrs, mask_n, zero, zero,
                               False, LAYOUT, DOT_DTYPE, PRECISION, BLOCK_N, BLOCK_K)
            if HAS_BIAS:
                acc += tl.load(b_ptr + expert.to(tl.int64) * stride_be + offs_n, mask=mask_n, other=0.0)[:, None]
            gamma = tl.load(weights_ptr + pair, mask=valid_m, other=0.0).to(tl.float32)
            out_ptrs = out_ptr + pair[None, :].to(tl.int64) * stride_om + offs_n[:, None]
            tl.store(out_ptrs, acc * gamma[None, :], mask=mask_n[:, None] & valid_m[None, :])
    else:
        valid_m = tl.arange(0, BLOCK_M) == 0
        total = tl.zeros((BLOCK_N,), tl.float32)
        for slot in range(0, top_k):
            pair = pid_b * top_k + slot
            expert = tl.load(ids_ptr + pair).to(tl.int32)
            if expert >= 0:
                w_ptrs, s_ptrs = _tile_pointers(w_ptr, s_ptr, expert, stride_we, stride_wn, stride_se, stride_sn,
                                                offs_n, BLOCK_K)
                a_ptrs = _activation_pointers(a_ptr, tl.zeros((BLOCK_M,), tl.int32) + pair, stride_am, BLOCK_K)
                acc, _ = _mma_loop(a_ptrs, valid_m, k_true, k_pad, w_ptrs, s_ptrs, w_ptrs, s_ptrs, mask_n,
                                   zero, zero, False, LAYOUT, DOT_DTYPE, PRECISION, BLOCK_N, BLOCK_K)
                part = tl.sum(acc, axis=1)  # only column 0 holds a pair
                if HAS_BIAS:
                    part += tl.load(b_ptr + expert.to(tl.int64) * stride_be + offs_n, mask=mask_n, other=0.0)
                total += part * tl.load(weights_ptr + pair).to(tl.float32)
        tl.store(out_ptr + pid_b.to(tl.int64) * stride_om + offs_n, total.to(out_ptr.dtype.element_ty), mask=mask_n)


@triton.jit
def reduce_topk_kernel(y_ptr, stride_ym, ids_ptr, out_ptr, stride_om, top_k, n, BLOCK: tl.constexpr):
    """out[m, :] = sum over the token's slots with a local expert of y[m * top_k + slot, :]."""
    m = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    acc = tl.zeros((BLOCK,), tl.float32)
    for slot in range(0, top_k):
        pair = m * top_k + slot
        local = (tl.zeros((BLOCK,), tl.int32) + tl.load(ids_ptr + pair).to(tl.int32)) >= 0
        acc += tl.load(y_ptr + pair.to(tl.int64) * stride_ym + offs, mask=mask & local, other=0.0)
    tl.store(out_ptr + m.to(tl.int64) * stride_om + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)
