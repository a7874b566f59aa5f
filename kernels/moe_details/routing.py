"""Grouping (token, slot) pairs by expert for the grouped GEMMs, on the device, no host sync.

Pair ``p = token * top_k + slot`` routed to local expert ``e >= 0`` gets a place in
``sorted_pairs``; each expert's pairs fill blocks of ``block_m`` pairs, the last one partly,
except that with ``tail_m`` the last block also takes up to ``tail_m`` pairs past ``block_m``
(an expert with ``block_m + 10`` pairs gets one block, not a second one of 10 pairs that would
decode all of its weights again). Block ``b`` owns places ``b * (block_m + tail_m) ..``.
Per block: ``block_expert`` (-1 past the used blocks) and ``block_rows`` (how many places
hold a pair; the rest are never read). Pairs with id -1 are left out.

Sizes depend only on (pairs, experts, block_m, tail_m): at most ``cdiv(P, block_m) + min(E, P)``
blocks, so the launch is the same for every routing and can be captured in a CUDA graph.
Within an expert, the order of its pairs follows the arrival order of atomics; every pair's
result is computed the same way wherever it sits, so the output does not depend on it.
"""

from __future__ import annotations

import dataclasses

import torch
import triton
import triton.language as tl

COUNT_BLOCK = 256
SCATTER_BLOCK = 64


@dataclasses.dataclass(frozen=True)
class Groups:
    sorted_pairs: torch.Tensor  # int32 [max_blocks * (block_m + tail_m)]
    block_expert: torch.Tensor  # int32 [max_blocks]
    block_rows: torch.Tensor  # int32 [max_blocks]
    max_blocks: int


def max_blocks(num_pairs: int, num_experts: int, block_m: int) -> int:
    return triton.cdiv(num_pairs, block_m) + min(num_experts, num_pairs)


@triton.jit
def _count_kernel(ids_ptr, counts_ptr, rank_ptr, num_pairs, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < num_pairs
    expert = tl.load(ids_ptr + offs, mask=inside, other=-1).to(tl.int32)
    local = inside & (expert >= 0)
    rank = tl.atomic_add(counts_ptr + expert, 1, mask=local)
    tl.store(rank_ptr + offs, rank, mask=local)


@triton.jit
def _place_kernel(ids_ptr, counts_ptr, rank_ptr, sorted_ptr, block_expert_ptr, block_rows_ptr,
                  num_pairs, num_experts, num_blocks, block_m, tail_m,
                  E_PAD: tl.constexpr, BLOCK: tl.constexpr):
    experts = tl.arange(0, E_PAD)
    count = tl.load(counts_ptr + experts, mask=experts < num_experts, other=0)
    # blocks per expert: whole blocks of block_m, the last one taking up to tail_m more pairs
    blocks = tl.maximum(tl.cdiv(count - tail_m, block_m), tl.minimum(count, 1))
    start = tl.cumsum(blocks, 0) - blocks

    # each pair to its place: its expert's block rank // block_m (at most the last), row in it. The
    # per-expert values are gathered from registers: one-hot [BLOCK, E_PAD] sums cost 8 us at 128
    # experts on an H100 (Nsight, round 22), more than the count and fill kernels together
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < num_pairs
    expert = tl.load(ids_ptr + offs, mask=inside, other=-1).to(tl.int32)
    local = inside & (expert >= 0)
    mine = tl.where(local, expert, 0)
    pairs = tl.gather(count, mine, 0)
    last = tl.gather(blocks, mine, 0) - 1
    rank = tl.load(rank_ptr + offs, mask=local, other=0)
    j = tl.minimum(rank // block_m, last)
    block = tl.gather(start, mine, 0) + j
    tl.store(sorted_ptr + block * (block_m + tail_m) + rank - j * block_m, offs, mask=local)
    # the pair that opens a block (the first of its block_m) names the block's expert and rows
    opens = local & (rank == j * block_m)
    tl.store(block_expert_ptr + block, expert, mask=opens)
    tl.store(block_rows_ptr + block, tl.where(j == last, pairs - j * block_m, block_m), mask=opens)
    # the blocks past every expert's: none
    unused = (offs >= tl.sum(blocks, 0)) & (offs < num_blocks)
    tl.store(block_expert_ptr + offs, tl.full((BLOCK,), -1, tl.int32), mask=unused)
    tl.store(block_rows_ptr + offs, tl.zeros((BLOCK,), tl.int32), mask=unused)


def group_by_expert(topk_ids_flat: torch.Tensor, num_experts: int, block_m: int, tail_m: int = 0) -> Groups:
    """``topk_ids_flat [P]`` local expert ids (-1: not on this rank) -> ``Groups``."""
    num_pairs = topk_ids_flat.numel()
    device = topk_ids_flat.device
    nb = max_blocks(num_pairs, num_experts, block_m)
    counts = torch.zeros(num_experts, dtype=torch.int32, device=device)
    rank = torch.empty(num_pairs, dtype=torch.int32, device=device)
    sorted_pairs = torch.empty(nb * (block_m + tail_m), dtype=torch.int32, device=device)
    block_expert = torch.empty(nb, dtype=torch.int32, device=device)
    block_rows = torch.empty(nb, dtype=torch.int32, device=device)
    _count_kernel[(triton.cdiv(num_pairs, COUNT_BLOCK),)](topk_ids_flat, counts, rank, num_pairs, BLOCK=COUNT_BLOCK)
    grid = (triton.cdiv(max(num_pairs, nb), SCATTER_BLOCK),)
    _place_kernel[grid](topk_ids_flat, counts, rank, sorted_pairs, block_expert, block_rows,
                        num_pairs, num_experts, nb, block_m, tail_m,
                        E_PAD=triton.next_power_of_2(num_experts), BLOCK=SCATTER_BLOCK, num_warps=4)
    return Groups(sorted_pairs, block_expert, block_rows, nb)
