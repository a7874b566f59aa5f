"""The two expert GEMMs and the top-k reduction (Triton kernels).

Both GEMMs compute ``acc[n, m] = sum_k W[n, k] * X[m, k]``. With ``WEIGHTS_AS_A`` the
weights, decoded in registers, are the MMA's A operand and the tokens routed to an expert its
B operand, so small token counts still fill the MMA's M dimension; without it the tokens are
A and the decoded weights go to shared memory as B. GEMM1 either runs two MMAs per K step
(gate rows, up rows) or, ``JOINT``, one over both row sets (one accumulator, half the decode
per warpgroup for the same tokens: the prefill shape).
One program owns ``BLOCK_N`` output rows of one expert for up to ``BLOCK_M`` (token, slot)
pairs and loops over K; weights are read once per program, never copied.

Which pairs a program serves (``GROUPED``):
* grouped (more tokens): block ``b`` of the expert-sorted pair list from ``routing.py``;
  with ``SMALL_M``, a block holding at most that many pairs (an expert's last, partly filled
  block) runs an MMA of ``SMALL_M`` token columns instead of ``BLOCK_M``; with ``TAIL_M``, an
  expert's last block may hold up to ``TAIL_M`` more pairs, which a second MMA of ``TAIL_M``
  columns multiplies by the same decoded weights (the tail shares the decode);
* not grouped (decode): one (token, slot) pair per program, no routing pass at all.

Pairs are indexed ``p = token * top_k + slot``. GEMM1 writes the activated intermediate
``act[p, :I]``; GEMM2 writes ``y[p, :H]`` (router weight applied; float32, or the activation dtype
where the config says ``partials_in_act_dtype``) and ``reduce_topk_kernel`` sums each token's slots in
float32. Local expert id -1 contributes nothing.
"""

from __future__ import annotations

import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait

from .dequant import block_scales, decode_tile

SILU: tl.constexpr = tl.constexpr(0)
SWIGLU_OAI: tl.constexpr = tl.constexpr(1)


@triton.jit
def _block_rows(pid_b, ids_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr,
                PLACES: tl.constexpr, FIRST: tl.constexpr, TILE_M: tl.constexpr, GROUPED: tl.constexpr):
    """(expert, pair index per column, column valid) for places ``FIRST .. FIRST + TILE_M`` of block
    ``pid_b`` (grouped: blocks are ``PLACES`` places apart; decode: ``FIRST`` is 0)."""
    offs_m = FIRST + tl.arange(0, TILE_M)
    if GROUPED:
        expert = tl.load(block_expert_ptr + pid_b)
        valid = offs_m < tl.load(block_rows_ptr + pid_b)
        pair = tl.load(sorted_ptr + pid_b * PLACES + offs_m, mask=valid, other=0)
    else:
        expert = tl.load(ids_ptr + pid_b).to(tl.int32)
        valid = offs_m == 0
        pair = tl.zeros((TILE_M,), tl.int32) + pid_b
    return expert, pair, valid


@triton.jit
def _mma(w, x, acc, WEIGHTS_AS_A: tl.constexpr, PRECISION: tl.constexpr):
    """``acc += w @ x`` with the weights as A (``x [BLOCK_K, BLOCK_M]``), else ``acc += x @ w^T``
    with the tokens as A (``x [BLOCK_M, BLOCK_K]``, ``acc [BLOCK_M, BLOCK_N]``)."""
    if WEIGHTS_AS_A:
        return tl.dot(w, x, acc, input_precision=PRECISION)
    else:
        return tl.dot(x, tl.trans(w), acc, input_precision=PRECISION)


@triton.jit
def _load(ptrs, mask, MASKED: tl.constexpr):
    """Weight words or block scales: ``MASKED``, 0 where ``mask`` is false; else every pointer is read (the
    mask, then unused, is never computed)."""
    if MASKED:
        return tl.load(ptrs, mask=mask, other=0)
    else:
        return tl.load(ptrs)


@triton.jit
def _activation_tile(x_ptrs, valid_m, k0, k_true, BLOCK_K: tl.constexpr, WEIGHTS_AS_A: tl.constexpr):
    """The activations at K ``k0 ..``: ``[BLOCK_K, BLOCK_M]`` as the MMA's B operand (weights as A),
    else ``[BLOCK_M, BLOCK_K]`` as its A operand; masked tokens and K past ``k_true`` read 0."""
    in_k = k0 + tl.arange(0, BLOCK_K) < k_true
    if WEIGHTS_AS_A:
        return tl.load(x_ptrs + k0, mask=valid_m[None, :] & in_k[:, None], other=0.0)
    else:
        return tl.load(tl.trans(x_ptrs) + k0, mask=valid_m[:, None] & in_k[None, :], other=0.0)


@triton.jit
def _scale_factors(s, LAYOUT: tl.constexpr, FOLD: tl.constexpr, NOW: tl.constexpr):
    """Block scales ``s`` as ``block_scales``' factors if ``NOW``, else as they are. ``SCALES_AT_LOAD``
    says where ``_mma_loop`` converts them: where they are loaded, each thread converts the few it loaded and
    32-bit factors move to the words' layout; where the decode reads them (Triton moves the conversion
    after the move), bytes move and each thread converts every scale of its words (8 for 2 loaded with a
    64-row tile). Loading converts in 2-8% fewer instructions per weight word (sm90 SASS), but the bench
    does not always follow (BENCHMARKS.md round 14)."""
    if NOW:
        s = block_scales(s, LAYOUT, FOLD)
    return s


@triton.jit
def _load_scales(s_ptrs, k0, mask, LAYOUT: tl.constexpr, FOLD: tl.constexpr, SCALES_AT_LOAD: tl.constexpr,
                 MASKED: tl.constexpr):
    """The block scales of the K tile at ``k0`` (``MASKED``: byte 0 where ``mask`` is false; else every pointer
    is read), as factors if ``SCALES_AT_LOAD``."""
    return _scale_factors(_load(s_ptrs + k0 // 32, mask, MASKED), LAYOUT, FOLD, SCALES_AT_LOAD)


@triton.jit
def _mma_loop(x_ptrs, valid_m, xt_ptrs, valid_t, k_lo, k_true, w_ptrs, s_ptrs, w2_ptrs, s2_ptrs, mask_n, second,
              DUAL: tl.constexpr, WEIGHTS_AS_A: tl.constexpr, LAYOUT: tl.constexpr, DOT_DTYPE: tl.constexpr,
              PRECISION: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
              FOLD: tl.constexpr, PREFETCH_X: tl.constexpr, TAIL_M: tl.constexpr, SCALES_AT_LOAD: tl.constexpr,
              EVEN_K: tl.constexpr, SCALES_PAST_K: tl.constexpr, BLOCK_K2: tl.constexpr):
    """K loop over ``k_lo .. k_true`` (``k_lo`` a multiple of the step) -> ``(acc, acc2, acc_t,
    acc2_t)``: ``acc``, ``acc2`` ``[BLOCK_N, BLOCK_M]`` float32: ``W[:, k] @ X[k, :]``.
    ``x_ptrs [BLOCK_K, BLOCK_M]`` point at the first K tile of the activations; ``DUAL``: a
    second weight stream (``w2_ptrs``, ``s2_ptrs`` -> ``acc2``) shares the activations.
    ``TAIL_M`` > 0: ``TAIL_M`` more token columns (``xt_ptrs``, ``valid_t`` -> ``acc_t``, ``acc2_t``)
    share the decoded weights (else the tail results are placeholders, never computed).

    ``WEIGHTS_AS_A``: the decoded weights are the MMA's A operand (rows = output features,
    good when few tokens share an expert); otherwise the activations are A and the weights,
    transposed, are B (rows = tokens, good for large blocks of tokens).

    ``EVEN_K`` (K a multiple of ``BLOCK_K``: every step whole): the weight words load without a mask,
    since every word the pointers name exists (rows past the last point at the last row, ``_rows_read``;
    their results are never stored): 2-5% fewer loop instructions per weight word on the DeepSeek-like
    layer (sm90 SASS, BENCHMARKS.md round 16). Otherwise words past K load as 0.
    ``SCALES_PAST_K`` (the scale buffer is readable up to ``2 * BLOCK_K / 32`` bytes past any row's last scale:
    ``layout.SCALE_SLACK``): the loop's scale loads need no mask either. Past K they read the row's padding,
    the next row or the slack; with words 0 there, every such scale (a finite factor: bytes 0..254) decodes
    to 0, and the last step's prefetch is never used. 1-8% fewer loop instructions per weight word again
    (round 17). Keeping that prefetch inside K with a ``minimum`` instead made Triton lay the scales out so
    that every decoded tile went through shared memory (2.4x slower, round 16). The activations keep their
    masks (tokens past the block; the ``PREFETCH_X`` read past K has no slack).

    ``BLOCK_K2`` > 0: each step is ``BLOCK_K`` then ``BLOCK_K2`` more K (two MMAs into the same accumulators), so
    a K that is a multiple of neither power of two but of their sum runs no partial last step (gpt-oss's 2880 =
    9 * (256 + 64): a last step of 256 decodes and multiplies 192 zeros, BENCHMARKS.md round 25); ``second``
    holds the second part's pointers ``(x, xt, w, s, w2, s2)``, ``BLOCK_K2`` wide (else placeholders).

    Triton's pipeliner stages the weight words through shared memory (``num_stages``); the
    byte-wide scales are loaded here one K step ahead (``SCALES_AT_LOAD``: see ``_scale_factors``); the
    activations as ``PREFETCH_X`` says."""
    STEP: tl.constexpr = BLOCK_K + BLOCK_K2
    offs_s = tl.arange(0, BLOCK_K // 32)
    if WEIGHTS_AS_A:
        acc = tl.zeros((BLOCK_N, BLOCK_M), tl.float32)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
    acc2 = acc
    acc_t = acc
    if TAIL_M > 0:
        if WEIGHTS_AS_A:
            acc_t = tl.zeros((BLOCK_N, TAIL_M), tl.float32)
        else:
            acc_t = tl.zeros((TAIL_M, BLOCK_N), tl.float32)
    acc2_t = acc_t
    # PREFETCH_X (weights as A only): the activation tile is loaded a K step ahead into registers.
    # Otherwise it is loaded in the loop and the pipeliner stages it through shared memory with
    # asynchronous copies; the MMA then reads it from there and runs asynchronously (wgmma waits
    # for the previous step, not this one), so decoding the next weight tile overlaps the MMA.
    x_next, xt_next, s_next, s2_next = _ahead(x_ptrs, xt_ptrs, s_ptrs, s2_ptrs, valid_m, valid_t, k_lo, k_true, mask_n,
                                              DUAL, LAYOUT, FOLD, SCALES_AT_LOAD, True, PREFETCH_X, TAIL_M,
                                              WEIGHTS_AS_A, BLOCK_K)
    second_next = (s_next, s_next, s_next, s_next)  # placeholders, never read
    if BLOCK_K2 > 0:
        second_next = _ahead(second[0], second[1], second[3], second[5], valid_m, valid_t, k_lo + BLOCK_K, k_true,
                             mask_n, DUAL, LAYOUT, FOLD, SCALES_AT_LOAD, True, PREFETCH_X, TAIL_M, WEIGHTS_AS_A,
                             BLOCK_K2)
    for k0 in range(k_lo, k_true, STEP):
        k1 = k0 + STEP  # the next step, whose scales (and PREFETCH_X: activations) load now
        x, xt = _step_activations(x_next, xt_next, x_ptrs, xt_ptrs, valid_m, valid_t, k0, k_true, DOT_DTYPE,
                                  PREFETCH_X, TAIL_M, WEIGHTS_AS_A, BLOCK_K)
        if PREFETCH_X:
            x_next = _activation_tile(x_ptrs, valid_m, k1, k_true, BLOCK_K, WEIGHTS_AS_A)
            if TAIL_M > 0:
                xt_next = _activation_tile(xt_ptrs, valid_t, k1, k_true, BLOCK_K, WEIGHTS_AS_A)
        s = s_next
        s2 = s2_next
        mask_s1 = mask_n[:, None] & (k1 + 32 * offs_s < k_true)[None, :]
        s_next = _load_scales(s_ptrs, k1, mask_s1, LAYOUT, FOLD, SCALES_AT_LOAD, not SCALES_PAST_K)
        acc, acc_t = _decode_mma(w_ptrs, s, k0, k_true, mask_n, x, xt, acc, acc_t, WEIGHTS_AS_A, LAYOUT, DOT_DTYPE,
                                 PRECISION, BLOCK_N, BLOCK_K, FOLD, TAIL_M, SCALES_AT_LOAD, EVEN_K)
        if DUAL:
            s2_next = _load_scales(s2_ptrs, k1, mask_s1, LAYOUT, FOLD, SCALES_AT_LOAD, not SCALES_PAST_K)
            acc2, acc2_t = _decode_mma(w2_ptrs, s2, k0, k_true, mask_n, x, xt, acc2, acc2_t, WEIGHTS_AS_A, LAYOUT,
                                       DOT_DTYPE, PRECISION, BLOCK_N, BLOCK_K, FOLD, TAIL_M, SCALES_AT_LOAD, EVEN_K)
        if BLOCK_K2 > 0:  # the step's second part: its operands as prefetched, the next step's prefetched now
            kb = k0 + BLOCK_K
            xb, xtb, sb, s2b = second_next
            xb, xtb = _step_activations(xb, xtb, second[0], second[1], valid_m, valid_t, kb, k_true, DOT_DTYPE,
                                        PREFETCH_X, TAIL_M, WEIGHTS_AS_A, BLOCK_K2)
            second_next = _ahead(second[0], second[1], second[3], second[5], valid_m, valid_t, k1 + BLOCK_K, k_true,
                                 mask_n, DUAL, LAYOUT, FOLD, SCALES_AT_LOAD, not SCALES_PAST_K, PREFETCH_X, TAIL_M,
                                 WEIGHTS_AS_A, BLOCK_K2)
            acc, acc_t = _decode_mma(second[2], sb, kb, k_true, mask_n, xb, xtb, acc, acc_t, WEIGHTS_AS_A, LAYOUT,
                                     DOT_DTYPE, PRECISION, BLOCK_N, BLOCK_K2, FOLD, TAIL_M, SCALES_AT_LOAD, EVEN_K)
            if DUAL:
                acc2, acc2_t = _decode_mma(second[4], s2b, kb, k_true, mask_n, xb, xtb, acc2, acc2_t, WEIGHTS_AS_A,
                                           LAYOUT, DOT_DTYPE, PRECISION, BLOCK_N, BLOCK_K2, FOLD, TAIL_M,
                                           SCALES_AT_LOAD, EVEN_K)
    if not WEIGHTS_AS_A:
        acc = tl.trans(acc)
        acc2 = tl.trans(acc2)
        if TAIL_M > 0:
            acc_t = tl.trans(acc_t)
            acc2_t = tl.trans(acc2_t)
    return acc, acc2, acc_t, acc2_t


@triton.jit
def _ahead(x_ptrs, xt_ptrs, s_ptrs, s2_ptrs, valid_m, valid_t, k, k_true, mask_n, DUAL: tl.constexpr,
           LAYOUT: tl.constexpr, FOLD: tl.constexpr, SCALES_AT_LOAD: tl.constexpr, MASKED: tl.constexpr,
           PREFETCH_X: tl.constexpr, TAIL_M: tl.constexpr, WEIGHTS_AS_A: tl.constexpr, WIDTH: tl.constexpr):
    """What ``_mma_loop`` loads a step ahead for ``WIDTH`` K at ``k``: ``(x, xt, s, s2)``, the activations
    (``PREFETCH_X``; the tail's with ``TAIL_M``) and the block scales (``DUAL``: both streams'). ``s`` stands in
    for what is not loaded (a compiled Triton function returns no None)."""
    mask_s = mask_n[:, None] & (k + 32 * tl.arange(0, WIDTH // 32) < k_true)[None, :]
    s = _load_scales(s_ptrs, k, mask_s, LAYOUT, FOLD, SCALES_AT_LOAD, MASKED)
    s2 = s
    if DUAL:
        s2 = _load_scales(s2_ptrs, k, mask_s, LAYOUT, FOLD, SCALES_AT_LOAD, MASKED)
    x = s
    xt = s
    if PREFETCH_X:
        x = _activation_tile(x_ptrs, valid_m, k, k_true, WIDTH, WEIGHTS_AS_A)
        if TAIL_M > 0:
            xt = _activation_tile(xt_ptrs, valid_t, k, k_true, WIDTH, WEIGHTS_AS_A)
    return x, xt, s, s2


@triton.jit
def _step_activations(x_ahead, xt_ahead, x_ptrs, xt_ptrs, valid_m, valid_t, k, k_true, DOT_DTYPE: tl.constexpr,
                      PREFETCH_X: tl.constexpr, TAIL_M: tl.constexpr, WEIGHTS_AS_A: tl.constexpr,
                      WIDTH: tl.constexpr):
    """``(x, xt)``: the activations of ``WIDTH`` K at ``k`` (and the tail's, with ``TAIL_M``) as the MMA takes
    them: ``PREFETCH_X``: the tiles ``_ahead`` loaded a step before; else loaded now. ``x`` stands in for ``xt``
    without a tail (a compiled Triton function returns no None)."""
    if PREFETCH_X:
        x = x_ahead.to(DOT_DTYPE)
        xt = x
        if TAIL_M > 0:
            xt = xt_ahead.to(DOT_DTYPE)
    else:
        x = _activation_tile(x_ptrs, valid_m, k, k_true, WIDTH, WEIGHTS_AS_A).to(DOT_DTYPE)
        xt = x
        if TAIL_M > 0:
            xt = _activation_tile(xt_ptrs, valid_t, k, k_true, WIDTH, WEIGHTS_AS_A).to(DOT_DTYPE)
    return x, xt


@triton.jit
def _decode_mma(w_ptrs, s, k, k_true, mask_n, x, xt, acc, acc_t, WEIGHTS_AS_A: tl.constexpr, LAYOUT: tl.constexpr,
                DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr, BLOCK_N: tl.constexpr, WIDTH: tl.constexpr,
                FOLD: tl.constexpr, TAIL_M: tl.constexpr, SCALES_AT_LOAD: tl.constexpr, EVEN_K: tl.constexpr):
    """``(acc, acc_t)`` plus the weight words of ``WIDTH`` K at ``k`` (``w_ptrs``), decoded with their block scales
    ``s``, times the activations ``x`` (and the tail's ``xt``)."""
    # K is a multiple of 32 (the scale block), so masking whole blocks of 4 words is exact and
    # keeps the mask constant over 16 bytes: one 16-byte copy per 4 words instead of four.
    mask_w = mask_n[:, None] & (k + 32 * (tl.arange(0, WIDTH // 8) // 4) < k_true)[None, :]
    w = decode_tile(_load(w_ptrs + k // 8, mask_w, not EVEN_K), _scale_factors(s, LAYOUT, FOLD, not SCALES_AT_LOAD),
                    BLOCK_N, WIDTH, LAYOUT, DOT_DTYPE, FOLD)
    acc = _mma(w, x, acc, WEIGHTS_AS_A, PRECISION)
    if TAIL_M > 0:
        acc_t = _mma(w, xt, acc_t, WEIGHTS_AS_A, PRECISION)
    return acc, acc_t


@triton.jit
def _tile_pointers(w_ptr, s_ptr, expert, stride_we, stride_wq, stride_se, stride_sn, offs_n,
                   BLOCK_K: tl.constexpr):
    """Word pointers ``[BLOCK_N, BLOCK_K // 8]`` and scale pointers ``[BLOCK_N, BLOCK_K // 32]`` of
    the first K tile of rows ``offs_n`` of ``expert``. ``stride_we`` is in 32-bit words,
    ``stride_wq`` (a row) in 16-byte quads of words: every MXFP4 row is (K / 32) * 16 bytes, and
    saying so lets the compiler copy weights 16 bytes at a time whatever K is (gpt-oss: 2880)."""
    offs_w = tl.arange(0, BLOCK_K // 8)
    offs_s = tl.arange(0, BLOCK_K // 32)
    w_ptrs = w_ptr + expert.to(tl.int64) * stride_we + offs_n[:, None] * (stride_wq * 4) + offs_w[None, :]
    s_ptrs = s_ptr + expert.to(tl.int64) * stride_se + offs_n[:, None] * stride_sn + offs_s[None, :]
    return w_ptrs, s_ptrs


@triton.jit
def _rows_read(offs_n, n_rows):
    """The weight rows a program reads for output rows ``offs_n``: those past the last read the last row
    (their results are never stored), so an ``EVEN_K`` loop needs no row mask."""
    return tl.minimum(offs_n, n_rows - 1)


@triton.jit
def _block_of_pairs(n_rows, BLOCK_N: tl.constexpr):
    """This program's block of pairs; the N blocks of one block of pairs are neighbours in the
    launch order, so they share its activations in L2."""
    return tl.program_id(0) // tl.cdiv(n_rows, BLOCK_N)


@triton.jit
def _program_tile(n_rows, ids_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr,
                  GROUPED: tl.constexpr, BLOCK_N: tl.constexpr, PLACES: tl.constexpr, TILE_M: tl.constexpr):
    """This program's ``(expert, pair, valid_m, offs_n)``: the first ``TILE_M`` places of its block
    of pairs and its ``BLOCK_N`` output rows. (In this order ptxas gives the ``k256`` decode tiles 168
    registers, 3 programs per SM; the row block computed first gave 170, which holds only 2.)"""
    pid = tl.program_id(0)
    num_n = tl.cdiv(n_rows, BLOCK_N)
    expert, pair, valid_m = _block_rows(pid // num_n, ids_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr,
                                        PLACES, 0, TILE_M, GROUPED)
    return expert, pair, valid_m, (pid % num_n) * BLOCK_N + tl.arange(0, BLOCK_N)


@triton.jit
def _tail_columns(n_rows, sorted_ptr, block_expert_ptr, block_rows_ptr, BLOCK_N: tl.constexpr,
                  PLACES: tl.constexpr, BLOCK_M: tl.constexpr, TAIL_M: tl.constexpr):
    """``(pair, valid)`` of the ``TAIL_M`` places past ``BLOCK_M`` of this program's block (grouped:
    the ids pointer ``_block_rows`` takes is read only on the decode path, so sorted_ptr stands in)."""
    _, pair, valid = _block_rows(_block_of_pairs(n_rows, BLOCK_N), sorted_ptr, sorted_ptr, block_expert_ptr,
                                 block_rows_ptr, PLACES, BLOCK_M, TAIL_M, True)
    return pair, valid


@triton.jit
def _activation_pointers(base_ptr, rows, stride, BLOCK_K: tl.constexpr):
    """``[BLOCK_K, BLOCK_M]`` pointers to the first K tile of the activation rows ``rows``."""
    return base_ptr + rows[None, :].to(tl.int64) * stride + tl.arange(0, BLOCK_K)[:, None]


@triton.jit
def _activation_tiles(base_ptr, stride, pairs_per_row, pair, valid_m, n_rows, sorted_ptr, block_expert_ptr,
                      block_rows_ptr, BLOCK_N: tl.constexpr, PLACES: tl.constexpr, TILE_M: tl.constexpr,
                      TAIL_M: tl.constexpr, BLOCK_K: tl.constexpr):
    """``(x_ptrs, pair_t, valid_t, xt_ptrs)``: pointers to the first K tile of the activations of this
    block's pairs (row ``pair // pairs_per_row``: GEMM1 reads a token's row for each of its top_k pairs),
    and the pairs, validity and pointers of its tail (without ``TAIL_M``, the block's own: placeholders)."""
    x_ptrs = _activation_pointers(base_ptr, pair // pairs_per_row, stride, BLOCK_K)
    pair_t = pair
    valid_t = valid_m
    xt_ptrs = x_ptrs
    if TAIL_M > 0:
        pair_t, valid_t = _tail_columns(n_rows, sorted_ptr, block_expert_ptr, block_rows_ptr, BLOCK_N, PLACES,
                                        TILE_M, TAIL_M)
        xt_ptrs = _activation_pointers(base_ptr, pair_t // pairs_per_row, stride, BLOCK_K)
    return x_ptrs, pair_t, valid_t, xt_ptrs


@triton.jit
def _second_part_pointers(w_ptr, s_ptr, expert, stride_we, stride_wq, stride_se, stride_sn, rows, stream2_rows,
                          x_ptr, stride_x, pairs_per_row, pair, valid_m, n_rows, sorted_ptr, block_expert_ptr,
                          block_rows_ptr, BLOCK_N: tl.constexpr, PLACES: tl.constexpr, TILE_M: tl.constexpr,
                          TAIL_M: tl.constexpr, BLOCK_K2: tl.constexpr):
    """``_mma_loop``'s ``second``: ``(x, xt, w, s, w2, s2)``, the pointers of a K step's second part (``BLOCK_K2``
    wide) for this program's tokens (and tail) and weight rows ``rows``; the second weight stream is
    ``stream2_rows`` rows further (GEMM1's up rows when not joint; else unused)."""
    w_ptrs, s_ptrs = _tile_pointers(w_ptr, s_ptr, expert, stride_we, stride_wq, stride_se, stride_sn, rows, BLOCK_K2)
    x_ptrs, _, _, xt_ptrs = _activation_tiles(x_ptr, stride_x, pairs_per_row, pair, valid_m, n_rows, sorted_ptr,
                                              block_expert_ptr, block_rows_ptr, BLOCK_N, PLACES, TILE_M, TAIL_M,
                                              BLOCK_K2)
    return (x_ptrs, xt_ptrs, w_ptrs, s_ptrs, w_ptrs + stream2_rows * (stride_wq * 4),
            s_ptrs + stream2_rows * stride_sn)


@triton.jit
def _split_range(k_true, SPLIT_K: tl.constexpr, STEP: tl.constexpr):
    """This program's share ``[k_lo, k_hi)`` of K: split ``program_id(1)`` of ``SPLIT_K``, in whole
    ``STEP``s (a split past the end gets an empty range)."""
    chunk = tl.cdiv(tl.cdiv(k_true, SPLIT_K), STEP) * STEP
    k_lo = tl.program_id(1) * chunk
    return k_lo, tl.minimum(k_lo + chunk, k_true)


@triton.jit
def _gated(gate, up, activation, alpha, limit):
    if activation == SWIGLU_OAI:
        gate = tl.minimum(gate, limit)
        up = tl.minimum(tl.maximum(up, -limit), limit)
        out = (up + 1.0) * gate * tl.sigmoid(alpha * gate)
    else:
        out = gate * tl.sigmoid(gate) * up
    return out


@triton.jit
def _after_prior_kernels(PDL: tl.constexpr):
    """With programmatic dependent launch (``PDL``, sm90+, the launch's ``launch_pdl``): wait until the
    kernels before this one in the stream have finished and their writes are visible (before any load),
    then let the next kernel's programs launch. So each kernel's programs are resident and waiting while
    the one before it runs its last wave, instead of launching after it has drained. (Letting the next
    kernel launch before waiting made every kernel of a 1-token layer resident at once, and the waiting
    programs slowed the running GEMM1: 45.6 against 36.7 us on gpt-oss-120b, BENCHMARKS.md round 12.)"""
    if PDL:
        gdc_wait()
        gdc_launch_dependents()


@triton.jit
def _serve_block(program: tl.constexpr, args, n_rows, block_rows_ptr, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr,
                 SMALL_M: tl.constexpr, TAIL_M: tl.constexpr, TAIL_PASS: tl.constexpr):
    """Runs ``program(*args, TILE_M=..., TAIL_M=...)`` (``_gemm1_program`` or ``_gemm2_program``) for
    this program's block of pairs: at most ``SMALL_M`` pairs (an expert's last block), an MMA of
    ``SMALL_M`` token columns; more than ``BLOCK_M`` (an expert's last block with its tail), a second
    MMA of ``TAIL_M`` columns on the same decoded weights; else the ``BLOCK_M`` one. Without
    ``SMALL_M`` / ``TAIL_M``, ``wide`` stays the constant True and ``tail`` False, and only the programs
    the config can run are compiled. ``TAIL_PASS`` 1 / 2: this launch runs every block but those with
    a tail / only those (the tail program needs more registers, which in one kernel would cost every
    program its occupancy); 0: all blocks."""
    rows = 0
    if SMALL_M > 0 or TAIL_M > 0:
        rows = tl.load(block_rows_ptr + _block_of_pairs(n_rows, BLOCK_N))
    wide = True
    if SMALL_M > 0:
        wide = rows > SMALL_M
        if not wide:
            if TAIL_PASS != 2:
                program(*args, TILE_M=SMALL_M, TAIL_M=0)
    if wide:
        tail = False
        if TAIL_M > 0:
            tail = rows > BLOCK_M
            if tail:
                if TAIL_PASS != 1:
                    program(*args, TILE_M=BLOCK_M, TAIL_M=TAIL_M)
        if not tail:
            if TAIL_PASS != 2:
                program(*args, TILE_M=BLOCK_M, TAIL_M=0)


@triton.jit(do_not_specialize=["has_bias", "activation"])
def gemm1_kernel(x_ptr, stride_xm, w_ptr, s_ptr, b_ptr, stride_we, stride_wq, stride_se, stride_sn, stride_be,
                 act_ptr, stride_as, stride_am, ids_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr,
                 top_k, n_half, k_true, has_bias, activation, alpha, limit,
                 GROUPED: tl.constexpr, WEIGHTS_AS_A: tl.constexpr, LAYOUT: tl.constexpr,
                 DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
                 BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, FOLD: tl.constexpr,
                 PREFETCH_X: tl.constexpr, JOINT: tl.constexpr, SMALL_M: tl.constexpr, TAIL_M: tl.constexpr,
                 TAIL_PASS: tl.constexpr, SPLIT_K: tl.constexpr, PDL: tl.constexpr, SCALES_AT_LOAD: tl.constexpr,
                 EVEN_K: tl.constexpr, SCALES_PAST_K: tl.constexpr, BLOCK_K2: tl.constexpr):
    """x [M, H] -> act [M*top_k, I]: gate rows ``n`` and up rows ``I + n`` of w13, bias, gating.
    ``has_bias`` (0/1) and ``activation`` (SILU/SWIGLU_OAI) are plain arguments, not
    specialised: one compiled kernel serves every layer; the branch costs nothing measurable.
    Split-K (decode path, grid axis 1): split ``s`` writes the float32 partial sums of its share of K
    (whole ``BLOCK_K`` steps), gate rows then up rows, to ``act[s, pair, :2I]``; ``gate_kernel``
    adds the splits and the bias and applies the gating."""
    _after_prior_kernels(PDL)
    # The arguments inline: Triton 3.6 turns a tuple assigned to a variable into tensors, which the
    # PRECISION string cannot become.
    _serve_block(_gemm1_program,
                 (x_ptr, stride_xm, w_ptr, s_ptr, b_ptr, stride_we, stride_wq, stride_se, stride_sn, stride_be,
                  act_ptr, stride_as, stride_am, ids_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr, top_k, n_half,
                  k_true, has_bias, activation, alpha, limit, GROUPED, WEIGHTS_AS_A, LAYOUT, DOT_DTYPE, PRECISION,
                  BLOCK_N, BLOCK_M + TAIL_M, BLOCK_K, FOLD, PREFETCH_X, JOINT, SPLIT_K, SCALES_AT_LOAD, EVEN_K,
                  SCALES_PAST_K, BLOCK_K2),
                 n_half, block_rows_ptr, BLOCK_N, BLOCK_M, SMALL_M, TAIL_M, TAIL_PASS)


@triton.jit
def _joint_gate_up(acc, b_row, rows, mask_rows, has_bias, BLOCK_N: tl.constexpr, TILE_M: tl.constexpr,
                   SPLIT_K: tl.constexpr):
    """A JOINT accumulator ``[2 * BLOCK_N, TILE_M]`` (gate rows, then up rows) -> bias added (unless
    split: gate_kernel adds it once) -> ``(gate, up)``, each ``[BLOCK_N, TILE_M]``."""
    if SPLIT_K == 1:
        if has_bias != 0:
            acc += tl.load(b_row + rows, mask=mask_rows, other=0.0)[:, None]
    return tl.split(tl.permute(tl.reshape(acc, (2, BLOCK_N, TILE_M)), (1, 2, 0)))


@triton.jit
def _gemm1_store(acc_g, acc_u, pair, valid_m, offs_n, mask_n, act_ptr, stride_as, stride_am, n_half, activation,
                 alpha, limit, SPLIT_K: tl.constexpr):
    """Gated ``act[pair, offs_n]``; split over K: the float32 partial sums, gate then up rows."""
    if SPLIT_K > 1:
        out_ptrs = (act_ptr + tl.program_id(1).to(tl.int64) * stride_as + pair[None, :].to(tl.int64) * stride_am
                    + offs_n[:, None])
        tl.store(out_ptrs, acc_g, mask=mask_n[:, None] & valid_m[None, :])
        tl.store(out_ptrs + n_half, acc_u, mask=mask_n[:, None] & valid_m[None, :])
    else:
        out = _gated(acc_g, acc_u, activation, alpha, limit)
        out_ptrs = act_ptr + pair[None, :].to(tl.int64) * stride_am + offs_n[:, None]
        tl.store(out_ptrs, out.to(act_ptr.dtype.element_ty), mask=mask_n[:, None] & valid_m[None, :])


@triton.jit
def _gemm1_program(x_ptr, stride_xm, w_ptr, s_ptr, b_ptr, stride_we, stride_wq, stride_se, stride_sn,
                   stride_be, act_ptr, stride_as, stride_am, ids_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr,
                   top_k, n_half, k_true, has_bias, activation, alpha, limit,
                   GROUPED: tl.constexpr, WEIGHTS_AS_A: tl.constexpr, LAYOUT: tl.constexpr,
                   DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr, BLOCK_N: tl.constexpr, PLACES: tl.constexpr,
                   BLOCK_K: tl.constexpr, FOLD: tl.constexpr, PREFETCH_X: tl.constexpr, JOINT: tl.constexpr,
                   SPLIT_K: tl.constexpr, SCALES_AT_LOAD: tl.constexpr, EVEN_K: tl.constexpr,
                   SCALES_PAST_K: tl.constexpr, BLOCK_K2: tl.constexpr, TILE_M: tl.constexpr,
                   TAIL_M: tl.constexpr):
    """GEMM1 for this program's block of pairs (its first ``TILE_M`` places, then ``TAIL_M`` more)
    and block of gate/up rows. ``JOINT``: both row sets in one MMA operand (else two MMAs sharing
    the activations)."""
    expert, pair, valid_m, offs_n = _program_tile(n_half, ids_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr,
                                                  GROUPED, BLOCK_N, PLACES, TILE_M)
    if JOINT:
        # Gate rows, then the same up rows, as one [2 * BLOCK_N, K] operand: one MMA and one
        # accumulator per K step (with one warpgroup per 64 rows, each decodes half the tile).
        read = _rows_read(offs_n, n_half)
        rows = tl.reshape(read[None, :] + (tl.arange(0, 2) * n_half)[:, None], (2 * BLOCK_N,))
    else:  # gate rows; the up rows are n_half rows further
        rows = _rows_read(offs_n, n_half)
    w_ptrs, s_ptrs = _tile_pointers(w_ptr, s_ptr, expert, stride_we, stride_wq, stride_se, stride_sn, rows, BLOCK_K)
    mask_n = offs_n < n_half
    if expert >= 0:
        x_ptrs, pair_t, valid_t, xt_ptrs = _activation_tiles(x_ptr, stride_xm, top_k, pair, valid_m, n_half,
                                                             sorted_ptr, block_expert_ptr, block_rows_ptr, BLOCK_N,
                                                             PLACES, TILE_M, TAIL_M, BLOCK_K)
        second = (x_ptrs, xt_ptrs, w_ptrs, s_ptrs, w_ptrs, s_ptrs)  # placeholders, never read
        if BLOCK_K2 > 0:
            second = _second_part_pointers(w_ptr, s_ptr, expert, stride_we, stride_wq, stride_se, stride_sn, rows,
                                           n_half, x_ptr, stride_xm, top_k, pair, valid_m, n_half, sorted_ptr,
                                           block_expert_ptr, block_rows_ptr, BLOCK_N, PLACES, TILE_M, TAIL_M, BLOCK_K2)
        b_row = b_ptr + expert.to(tl.int64) * stride_be
        k_lo = 0
        k_hi = k_true
        if SPLIT_K > 1:  # (only then: a K range from a call is no longer a constant, which costs registers)
            k_lo, k_hi = _split_range(k_true, SPLIT_K, BLOCK_K + BLOCK_K2)
        if JOINT:
            mask_rows = tl.reshape(tl.broadcast_to(mask_n[None, :], (2, BLOCK_N)), (2 * BLOCK_N,))
            acc, _, acc_t, _ = _mma_loop(x_ptrs, valid_m, xt_ptrs, valid_t, k_lo, k_hi, w_ptrs, s_ptrs, w_ptrs,
                                         s_ptrs, mask_rows, second, False, WEIGHTS_AS_A, LAYOUT, DOT_DTYPE, PRECISION,
                                         2 * BLOCK_N, TILE_M, BLOCK_K, FOLD, PREFETCH_X, TAIL_M, SCALES_AT_LOAD,
                                         EVEN_K, SCALES_PAST_K, BLOCK_K2)
            acc_g, acc_u = _joint_gate_up(acc, b_row, rows, mask_rows, has_bias, BLOCK_N, TILE_M, SPLIT_K)
            if TAIL_M > 0:
                acc_tg, acc_tu = _joint_gate_up(acc_t, b_row, rows, mask_rows, has_bias, BLOCK_N, TAIL_M, SPLIT_K)
        else:
            acc_g, acc_u, acc_tg, acc_tu = _mma_loop(x_ptrs, valid_m, xt_ptrs, valid_t, k_lo, k_hi, w_ptrs, s_ptrs,
                                                     w_ptrs + n_half * (stride_wq * 4), s_ptrs + n_half * stride_sn,
                                                     mask_n, second, True, WEIGHTS_AS_A, LAYOUT, DOT_DTYPE,
                                                     PRECISION, BLOCK_N, TILE_M, BLOCK_K, FOLD, PREFETCH_X, TAIL_M,
                                                     SCALES_AT_LOAD, EVEN_K, SCALES_PAST_K, BLOCK_K2)
            if SPLIT_K == 1:
                if has_bias != 0:
                    b_g = tl.load(b_row + offs_n, mask=mask_n, other=0.0)[:, None]
                    b_u = tl.load(b_row + offs_n + n_half, mask=mask_n, other=0.0)[:, None]
                    acc_g += b_g
                    acc_u += b_u
                    if TAIL_M > 0:
                        acc_tg += b_g
                        acc_tu += b_u
        _gemm1_store(acc_g, acc_u, pair, valid_m, offs_n, mask_n, act_ptr, stride_as, stride_am, n_half, activation,
                     alpha, limit, SPLIT_K)
        if TAIL_M > 0:
            _gemm1_store(acc_tg, acc_tu, pair_t, valid_t, offs_n, mask_n, act_ptr, stride_as, stride_am, n_half,
                         activation, alpha, limit, SPLIT_K)


@triton.jit(do_not_specialize=["has_bias"])
def gemm2_kernel(a_ptr, stride_am, w_ptr, s_ptr, b_ptr, stride_we, stride_wq, stride_se, stride_sn, stride_be,
                 y_ptr, stride_ys, stride_ym, ids_ptr, weights_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr,
                 n_out, k_true, has_bias,
                 GROUPED: tl.constexpr, WEIGHTS_AS_A: tl.constexpr, LAYOUT: tl.constexpr,
                 DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
                 BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, FOLD: tl.constexpr,
                 PREFETCH_X: tl.constexpr, SPLIT_K: tl.constexpr, SMALL_M: tl.constexpr, TAIL_M: tl.constexpr,
                 TAIL_PASS: tl.constexpr, PDL: tl.constexpr, SCALES_AT_LOAD: tl.constexpr, EVEN_K: tl.constexpr,
                 SCALES_PAST_K: tl.constexpr, BLOCK_K2: tl.constexpr):
    """act [M*top_k, I] -> y [SPLIT_K, M*top_k, H] float32: down projection, bias, router weight.
    Split-K (grid axis 1): split ``s`` sums its share of K (whole ``BLOCK_K`` steps) into
    ``y[s]``; split 0 adds the bias; ``reduce_topk_kernel`` sums the splits with the slots."""
    _after_prior_kernels(PDL)
    _serve_block(_gemm2_program,  # (the arguments inline, as in gemm1_kernel)
                 (a_ptr, stride_am, w_ptr, s_ptr, b_ptr, stride_we, stride_wq, stride_se, stride_sn, stride_be, y_ptr,
                  stride_ys, stride_ym, ids_ptr, weights_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr, n_out,
                  k_true, has_bias, GROUPED, WEIGHTS_AS_A, LAYOUT, DOT_DTYPE, PRECISION, BLOCK_N, BLOCK_M + TAIL_M,
                  BLOCK_K, FOLD, PREFETCH_X, SPLIT_K, SCALES_AT_LOAD, EVEN_K, SCALES_PAST_K, BLOCK_K2),
                 n_out, block_rows_ptr, BLOCK_N, BLOCK_M, SMALL_M, TAIL_M, TAIL_PASS)


@triton.jit
def _gemm2_store(acc, pair, valid_m, expert, offs_n, mask_n, b_ptr, stride_be, has_bias, weights_ptr, y_ptr,
                 stride_ym):
    """``y[pair, offs_n]`` = (acc + bias on split 0) * router weight."""
    if has_bias != 0 and tl.program_id(1) == 0:
        acc += tl.load(b_ptr + expert.to(tl.int64) * stride_be + offs_n, mask=mask_n, other=0.0)[:, None]
    gamma = tl.load(weights_ptr + pair, mask=valid_m, other=0.0).to(tl.float32)
    out_ptrs = y_ptr + pair[None, :].to(tl.int64) * stride_ym + offs_n[:, None]
    tl.store(out_ptrs, (acc * gamma[None, :]).to(y_ptr.dtype.element_ty), mask=mask_n[:, None] & valid_m[None, :])


@triton.jit
def _gemm2_program(a_ptr, stride_am, w_ptr, s_ptr, b_ptr, stride_we, stride_wq, stride_se, stride_sn,
                   stride_be, y_ptr, stride_ys, stride_ym, ids_ptr, weights_ptr, sorted_ptr, block_expert_ptr,
                   block_rows_ptr, n_out, k_true, has_bias,
                   GROUPED: tl.constexpr, WEIGHTS_AS_A: tl.constexpr, LAYOUT: tl.constexpr,
                   DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr, BLOCK_N: tl.constexpr, PLACES: tl.constexpr,
                   BLOCK_K: tl.constexpr, FOLD: tl.constexpr, PREFETCH_X: tl.constexpr, SPLIT_K: tl.constexpr,
                   SCALES_AT_LOAD: tl.constexpr, EVEN_K: tl.constexpr, SCALES_PAST_K: tl.constexpr,
                   BLOCK_K2: tl.constexpr, TILE_M: tl.constexpr, TAIL_M: tl.constexpr):
    """GEMM2 for this program's block of pairs (its first ``TILE_M`` places, then ``TAIL_M`` more)
    and block of output rows."""
    expert, pair, valid_m, offs_n = _program_tile(n_out, ids_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr,
                                                  GROUPED, BLOCK_N, PLACES, TILE_M)
    w_ptrs, s_ptrs = _tile_pointers(w_ptr, s_ptr, expert, stride_we, stride_wq, stride_se, stride_sn,
                                    _rows_read(offs_n, n_out), BLOCK_K)
    mask_n = offs_n < n_out
    if expert >= 0:
        a_ptrs, pair_t, valid_t, at_ptrs = _activation_tiles(a_ptr, stride_am, 1, pair, valid_m, n_out, sorted_ptr,
                                                             block_expert_ptr, block_rows_ptr, BLOCK_N, PLACES, TILE_M,
                                                             TAIL_M, BLOCK_K)
        second = (a_ptrs, at_ptrs, w_ptrs, s_ptrs, w_ptrs, s_ptrs)  # placeholders, never read
        if BLOCK_K2 > 0:
            second = _second_part_pointers(w_ptr, s_ptr, expert, stride_we, stride_wq, stride_se, stride_sn,
                                           _rows_read(offs_n, n_out), 0, a_ptr, stride_am, 1, pair, valid_m, n_out,
                                           sorted_ptr, block_expert_ptr, block_rows_ptr, BLOCK_N, PLACES, TILE_M,
                                           TAIL_M, BLOCK_K2)
        k_lo = 0
        k_hi = k_true
        if SPLIT_K > 1:
            k_lo, k_hi = _split_range(k_true, SPLIT_K, BLOCK_K + BLOCK_K2)
            y_ptr += tl.program_id(1).to(tl.int64) * stride_ys
        acc, _, acc_t, _ = _mma_loop(a_ptrs, valid_m, at_ptrs, valid_t, k_lo, k_hi, w_ptrs, s_ptrs, w_ptrs, s_ptrs,
                                     mask_n, second, False, WEIGHTS_AS_A, LAYOUT, DOT_DTYPE, PRECISION, BLOCK_N,
                                     TILE_M, BLOCK_K, FOLD, PREFETCH_X, TAIL_M, SCALES_AT_LOAD, EVEN_K, SCALES_PAST_K,
                                     BLOCK_K2)
        _gemm2_store(acc, pair, valid_m, expert, offs_n, mask_n, b_ptr, stride_be, has_bias, weights_ptr, y_ptr,
                     stride_ym)
        if TAIL_M > 0:
            _gemm2_store(acc_t, pair_t, valid_t, expert, offs_n, mask_n, b_ptr, stride_be, has_bias, weights_ptr,
                         y_ptr, stride_ym)


@triton.jit
def _sum_of_splits(ptrs, stride_split, mask, SPLIT_K: tl.constexpr):
    """``sum_s ptrs[s * stride_split]`` in float32 over the ``SPLIT_K`` partial sums of a split-K GEMM."""
    acc = tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)
    for split in tl.static_range(1, SPLIT_K):
        acc += tl.load(ptrs + split * stride_split, mask=mask, other=0.0).to(tl.float32)
    return acc


@triton.jit
def reduce_topk_kernel(y_ptr, stride_ys, stride_ym, ids_ptr, out_ptr, stride_om, top_k, n, SPLIT_K: tl.constexpr,
                       SLOTS: tl.constexpr, BLOCK: tl.constexpr, PDL: tl.constexpr):
    """out[m, :] = sum over the token's slots with a local expert and over the K splits of
    y[split, m * top_k + slot, :]. The slots as one [SLOTS, BLOCK] tile (``SLOTS``: top_k's next power
    of two): the token's ids in one load, then every row in one, two memory round trips where a loop
    over the slots took two per slot (the top-k sum's whole time at decode sizes)."""
    _after_prior_kernels(PDL)
    m = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    slots = tl.arange(0, SLOTS)
    pairs = m * top_k + slots
    local = (slots < top_k) & (tl.load(ids_ptr + pairs, mask=slots < top_k, other=-1).to(tl.int32) >= 0)
    rows = y_ptr + pairs[:, None].to(tl.int64) * stride_ym + offs[None, :]
    acc = _sum_of_splits(rows, stride_ys, local[:, None] & (offs < n)[None, :], SPLIT_K)
    tl.store(out_ptr + m.to(tl.int64) * stride_om + offs, tl.sum(acc, 0).to(out_ptr.dtype.element_ty), mask=offs < n)


@triton.jit(do_not_specialize=["has_bias", "activation"])
def gate_kernel(h_ptr, stride_hs, stride_hm, b_ptr, stride_be, ids_ptr, act_ptr, stride_am, n_half, has_bias,
                activation, alpha, limit, SPLIT_K: tl.constexpr, BLOCK: tl.constexpr, PDL: tl.constexpr):
    """After a split-K GEMM1: ``act[p, n] = gated(sum_s h[s, p, n] + b_gate, sum_s h[s, p, I + n] + b_up)``
    for pair ``p`` (grid axis 0) and a block of ``n``; pairs with local expert -1 are left alone
    (GEMM2 skips them)."""
    _after_prior_kernels(PDL)
    p = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_half
    expert = tl.load(ids_ptr + p).to(tl.int32)
    if expert >= 0:
        row = h_ptr + p.to(tl.int64) * stride_hm + offs
        gate = _sum_of_splits(row, stride_hs, mask, SPLIT_K)
        up = _sum_of_splits(row + n_half, stride_hs, mask, SPLIT_K)
        if has_bias != 0:
            b_row = b_ptr + expert.to(tl.int64) * stride_be + offs
            gate += tl.load(b_row, mask=mask, other=0.0)
            up += tl.load(b_row + n_half, mask=mask, other=0.0)
        out = _gated(gate, up, activation, alpha, limit)
        tl.store(act_ptr + p.to(tl.int64) * stride_am + offs, out.to(act_ptr.dtype.element_ty), mask=mask)
