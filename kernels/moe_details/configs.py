"""The one table of launch configurations: per layer shape and token count.

A row applies to a shape key ``(experts, top_k, hidden, intermediate)`` (``ANY`` for every
shape without a row of its own) and to token counts up to ``max_tokens``; the first match
wins. ``grouped=False`` is the decode path (no routing pass: each GEMM program serves one
(token, slot) pair); ``grouped=True`` sorts pairs by expert into blocks of ``block_m`` (the
MMA's N) so each expert's weights are read once per block.

Measured with ``mxfp4-plugin bench`` (BENCHMARKS.md): on H200 through round 14, on H100 since round
15 (the rows for 16..256 tokens; gpt-oss-20b's at 2-4 and 1025-4096; the joint n32 GEMM1 rows at 1-128 tokens,
round 19); rows are the fastest of the candidates
``CANDIDATES`` tried there, confirmed by an A/B of the bench.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class GemmConfig:
    block_n: int  # output rows per program (GEMM1: gate rows, plus as many up rows)
    block_k: int  # K per step (a power of two >= 32; K need not be a multiple of it)
    num_warps: int
    num_stages: int
    weights_as_a: bool = True  # decoded weights as the MMA's A operand (else B, tokens as A)
    split_k: int = 1  # decode path: K split over this many programs (GEMM1: partial sums added and gated by
    #                   gate_kernel; GEMM2: summed by the top-k reduction)
    joint: bool = False  # GEMM1 only: gate and up rows in one MMA operand of 2 * block_n rows
    prefetch_x: bool = False  # weights as A only: activations a K step ahead in registers (else staged in
    #                           shared memory by the pipeliner, which lets the MMA run asynchronously)
    scales_at_load: bool = False  # block scales converted to their factors where loaded, not where decoded
    #   (gemm._scale_factors: 2-8% fewer loop instructions; faster on gpt-oss, slower on DeepSeek-like, round 14)
    maxnreg: int | None = None  # registers per thread at most (ptxas's cap; None: its own choice). Where registers,
    #   not shared memory, bound the programs per SM: DeepSeek-like's n128 GEMM2 tile takes 168 (3 programs of
    #   4 warps per SM) unless capped at 128 (4 per SM, no spill in the K loop; round 13: no gain, see the capped
    #   candidates). Shipped: two tail launches with scales at load keep their programs per SM (_R168, _R128)
    block_k2: int = 0  # a second part of each K step, this much K after block_k's (a power of two >= 32 below
    #   block_k; 0: none): a K that neither divides but their sum does runs no partial last step (gpt-oss's
    #   K = 2880 as 9 steps of 256 + 64, where steps of 256 leave a last one of 64 that decodes and multiplies
    #   192 columns of zeros: about 5% of the copy roofline at 16-256 tokens, BENCHMARKS.md round 25)
    tail_launch: GemmConfig | None = None  # with MoEConfig.tail_m: the blocks with a tail in a second launch of
    #   their own, with this config (so the tail's extra registers do not lower every other program's occupancy,
    #   and a wide block's tail may take fewer stages or a shorter K step to fit in shared memory)

    def __post_init__(self) -> None:
        if self.block_k < 32 or self.block_k & (self.block_k - 1):
            raise ValueError(f"block_k: expected a power of two >= 32, got {self.block_k}")
        if self.block_n < 16 or self.block_n & (self.block_n - 1):
            raise ValueError(f"block_n: expected a power of two >= 16, got {self.block_n}")
        if self.block_k2 and (self.block_k2 < 32 or self.block_k2 >= self.block_k or self.block_k2 & (self.block_k2 - 1)):
            raise ValueError(f"block_k2: expected 0 or a power of two >= 32 below block_k ({self.block_k}), got "
                             f"{self.block_k2}")
        if self.split_k < 1:
            raise ValueError(f"split_k: expected >= 1, got {self.split_k}")
        if self.prefetch_x and not self.weights_as_a:
            raise ValueError("prefetch_x: serves the weights-as-A orientation only, got weights_as_a=False")
        if self.maxnreg is not None and not 32 <= self.maxnreg <= 255:
            raise ValueError(f"maxnreg: expected None or 32..255 registers per thread, got {self.maxnreg}")
        if self.tail_launch is not None and (self.tail_launch.tail_launch is not None or self.tail_launch.split_k != 1):
            raise ValueError(f"tail_launch: expected a config without a tail launch or split-K of its own, got "
                             f"{self.tail_launch}")


@dataclasses.dataclass(frozen=True)
class MoEConfig:
    grouped: bool
    block_m: int  # pairs per program (decode path: 16, one of them used)
    gemm1: GemmConfig
    gemm2: GemmConfig
    small_m: int = 0  # grouped only: a block of at most this many pairs (an expert's last) runs an MMA this
    #                   wide instead of block_m; with about block_m pairs per expert, a third of the blocks
    #                   are such last blocks holding a handful of pairs (0: every block at block_m)
    tail_m: int = 0  # grouped only: an expert's last block takes up to this many pairs past block_m, which a
    #                  second MMA this wide multiplies by the same decoded weights (instead of a block of its
    #                  own that decodes all of the expert's weights again for those few pairs)
    partials_in_act_dtype: bool = False  # grouped only: GEMM2 stores each pair's weighted result in the
    #   activation dtype (bf16 / fp16), not float32, for the top-k sum to add in float32: half the bytes it
    #   reads (at 8192 tokens on gpt-oss-20b 377 of its 424 MB, 145 us in Nsight, round 22) and GEMM2 writes,
    #   for one rounding of each of a token's top_k terms before their sum

    def __post_init__(self) -> None:
        if self.small_m and (not self.grouped or self.small_m < 16 or self.small_m >= self.block_m
                             or self.small_m & (self.small_m - 1)):
            raise ValueError(f"small_m: expected 0 or a power of two >= 16 below block_m ({self.block_m}) on the "
                             f"grouped path, got {self.small_m} (grouped={self.grouped})")
        if self.tail_m and (not self.grouped or self.tail_m < 16 or self.tail_m > self.block_m
                            or self.tail_m & (self.tail_m - 1)):
            raise ValueError(f"tail_m: expected 0 or a power of two >= 16 up to block_m ({self.block_m}) on the "
                             f"grouped path, got {self.tail_m} (grouped={self.grouped})")
        if self.gemm2.joint:
            raise ValueError("gemm2.joint: only GEMM1 has gate and up rows to join")
        if self.partials_in_act_dtype and not self.grouped:
            raise ValueError("partials_in_act_dtype: serves the grouped path (whose top-k sum reads every pair's row) "
                             "only, got grouped=False")
        for name, gemm in (("gemm1", self.gemm1), ("gemm2", self.gemm2)):
            if self.grouped and gemm.split_k != 1:
                raise ValueError(f"{name}.split_k: split-K serves the decode path only, got {gemm.split_k}")
            if gemm.tail_launch is not None and not self.tail_m:
                raise ValueError(f"{name}.tail_launch: launches the blocks with a tail apart, but tail_m is 0")
        if self.gemm2.tail_launch is not None and self.gemm2.tail_launch.joint:
            raise ValueError("gemm2.tail_launch.joint: only GEMM1 has gate and up rows to join")

    def describe(self) -> str:
        g1, g2 = self.gemm1, self.gemm2
        def gemm(g: GemmConfig) -> str:
            flags = [" wB" * (not g.weights_as_a), f" sk{g.split_k}" * (g.split_k > 1), " joint" * g.joint,
                     " px" * g.prefetch_x, " sl" * g.scales_at_load, f" r{g.maxnreg}" * (g.maxnreg is not None)]
            tail = g.tail_launch
            if tail is not None:  # "tail-apart" alone when the tail launch runs the same config
                same = tail == dataclasses.replace(g, tail_launch=None)
                flags.append(" tail-apart" + f"({gemm(tail)})" * (not same))
            return f"n{g.block_n} k{g.block_k}{f'+{g.block_k2}' * bool(g.block_k2)} w{g.num_warps} s{g.num_stages}{''.join(flags)}"

        small = f"/{self.small_m}" * bool(self.small_m) + f"+{self.tail_m}" * bool(self.tail_m)
        partials = " partials-act" * self.partials_in_act_dtype
        return (f"{'grouped' if self.grouped else 'decode'} m{self.block_m}{small} g1({gemm(g1)}) g2({gemm(g2)})"
                f"{partials}")


ANY = None
ShapeKey = tuple[int, int, int, int]


def _each_gemm(value) -> tuple:
    """A row helper's per-GEMM option: one value for both GEMMs, or a pair ``(GEMM1's, GEMM2's)``."""
    return value if isinstance(value, tuple) else (value, value)


def _decode(n1, k1, w1, s1, n2, k2, w2, s2, split_k=1, px=False, split_k1=1, regs=(None, None),
            sl=False, joint=False, plus=0) -> MoEConfig:
    """``regs``: each GEMM's ``maxnreg``; ``sl``: both GEMMs' ``scales_at_load`` (a pair: each GEMM's);
    ``joint``: GEMM1's; ``plus``: both GEMMs' ``block_k2`` (a pair: each GEMM's)."""
    sl1, sl2 = _each_gemm(sl)
    plus1, plus2 = _each_gemm(plus)
    return MoEConfig(False, 16, GemmConfig(n1, k1, w1, s1, split_k=split_k1, prefetch_x=px, scales_at_load=sl1,
                                           maxnreg=regs[0], joint=joint, block_k2=plus1),
                     GemmConfig(n2, k2, w2, s2, split_k=split_k, prefetch_x=px, scales_at_load=sl2, maxnreg=regs[1],
                                block_k2=plus2))


def _grouped(m, n1, k1, w1, s1, n2, k2, w2, s2, weights_as_a=True, px=False, joint=False, small=0,
             tail=0, apart=(False, False), regs=(None, None), sl=False, p16=False, plus=0) -> MoEConfig:
    """``apart`` per GEMM: False (tails in the one launch), True (a second launch, same config) or a dict
    of the fields the tail launch changes (``{"num_stages": 2}``); ``regs``: each GEMM's ``maxnreg``;
    ``sl``: both GEMMs' ``scales_at_load`` (a pair: each GEMM's); ``p16``: ``partials_in_act_dtype``;
    ``plus``: both GEMMs' ``block_k2`` (a pair: each GEMM's)."""
    sl1, sl2 = _each_gemm(sl)
    plus1, plus2 = _each_gemm(plus)
    g1 = GemmConfig(n1, k1, w1, s1, weights_as_a, joint=joint, prefetch_x=px, scales_at_load=sl1, maxnreg=regs[0],
                    block_k2=plus1)
    g2 = GemmConfig(n2, k2, w2, s2, weights_as_a, prefetch_x=px, scales_at_load=sl2, maxnreg=regs[1],
                    block_k2=plus2)
    def with_tail_launch(g: GemmConfig, how) -> GemmConfig:
        if how is False:
            return g
        return dataclasses.replace(g, tail_launch=dataclasses.replace(g, **({} if how is True else how)))
    return MoEConfig(True, m, with_tail_launch(g1, apart[0]), with_tail_launch(g2, apart[1]), small, tail, p16)


#: a tail launch's changes for 256-token blocks with tails of 32 or 64 (shared memory)
_K64S4 = {"block_k": 64, "num_stages": 4}

#: register caps for two tail launches with scales at load (``sl``): ptxas gives them 172 and 130 registers, 2 and
#: 1 programs per SM instead of 3 and 2; capped, no spill (benchmarks/sass_report.py, round 14)
_R168 = {"maxnreg": 168}
_R128 = {"maxnreg": 128}

#: rows both gpt-oss layers run (gpt-oss-20b's rows come before ANY's in TABLE, so it names them too)
_GPT_OSS_1_TOKEN = _decode(32, 256, 4, 4, 64, 128, 4, 3, split_k=2, px=True, sl=True, joint=True)
_GPT_OSS_4_TOKENS = _decode(32, 256, 4, 4, 64, 256, 4, 3, split_k=2, px=True, sl=True, joint=True)
_GPT_OSS_M16 = _grouped(16, 32, 256, 4, 4, 64, 256, 4, 3, px=True, joint=True, sl=(True, False), regs=(128, None))

#: rows gpt-oss-120b (ANY) and DeepSeek-like share between the bench's points since round 28 (H100 A/B of the bench at
#: 320-768 tokens, BENCHMARKS.md round 28): 257-448 tokens on m16 blocks (about 10-14 pairs per expert: m32 blocks
#: were half empty; gpt-oss-120b 726-854 us against 855-878, DeepSeek-like 1280-1592 against 1670-1716), 449-768 on
#: plain m32/16 blocks (2-5% less than the m32/16+16 row with tail launches, which stays from 769 to 1024)
_M16_R128 = _grouped(16, 32, 256, 4, 4, 64, 256, 4, 3, px=True, joint=True, sl=True, regs=(128, 128))
_M32_PLAIN = _grouped(32, 64, 128, 4, 3, 64, 128, 4, 3, small=16)
#: 2049-3072 tokens on DeepSeek-like and gpt-oss-20b since round 28, on ANY (gpt-oss-120b) since round 29 (96 and 384
#: pairs per expert at 3072 on the first two): m128 blocks with GEMM2 in tiles of 256 rows and K steps of 64 (H100 A/B
#: of the bench at 3072: DeepSeek-like 3464-3469 us against 3776-3792 for the m128/32+32 row, gpt-oss-20b 1422-1424
#: against 1556-1557 for the m256 one; gpt-oss-20b at 2560 1243-1249 against 1310, level at 2048 and 3584)
_M128_K64 = _grouped(128, 128, 64, 8, 4, 256, 64, 8, 4, joint=True, small=32, p16=True)

_GPT_OSS_20B_PREFILL = _grouped(256, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=64, sl=True, p16=True)

GPT_OSS_120B: ShapeKey = (128, 4, 2880, 2880)
GPT_OSS_20B: ShapeKey = (32, 4, 2880, 2880)
DEEPSEEK_LIKE: ShapeKey = (256, 8, 4096, 2048)

#: (shape key or ANY, max tokens, config), searched in order. The rows for named shapes are
#: the fastest candidates of ``mxfp4-plugin bench --tune`` on H200 (BENCHMARKS.md); ANY follows
#: gpt-oss-120b's, the most common layer here. ``sl`` (scales converted at load) where the bench's A/B
#: found it faster or level (round 14: gpt-oss up to 6% faster; DeepSeek-like 3% slower at 16-256 tokens).
#: The m16 rows up to 256 tokens (gpt-oss-20b: 96) take K steps of 256 at 3 stages, without ``sl``, since
#: round 15 (GEMM1 up to 128 tokens since round 19: the joint n32 tile at 4 stages with ``sl``, see below): on
#: H100 the k128 ``sl`` row of round 14 read at 63-67% of the copy roofline, this one at 73-79% (A/B of the
#: bench: gpt-oss-120b 14-16% faster, gpt-oss-20b 10-14%, DeepSeek-like 1-3% at 64-256 tokens, level at 16); on H200
#: the two were within 4% of each other in rounds 10 and 13's tunes.
#: Every row past 1024 tokens stores GEMM2's per-pair results in the activation dtype (``p16``) since round 23: at
#: 4096-8192 tokens 1.5-3.6% less time on every layer (H100 A/B of the bench), the error against float32 2.2-2.3e-3
#: -> 2.8-2.9e-3 (the peer's); up to 1024 tokens the top-k sum's bytes are too few to matter and rows keep float32.
TABLE: tuple[tuple[ShapeKey | None, int, MoEConfig], ...] = (
    # GEMM1 as joint n32 (32 gate + 32 up rows in one operand, 4 programs per SM) since round 19: at 1 token in one
    # launch (no split over K, no gating pass), at 2-4 and 16-128 tokens (grouped: capped at 128 registers) with
    # more programs per SM than the two-stream n64 tile. A/B of the bench on the H100 (BENCHMARKS.md round 19).
    (GPT_OSS_20B, 1, _GPT_OSS_1_TOKEN),
    # 2 tokens: the two-stream decode row of round 16 (H100 A/B of the bench: 59.7 / 60.2 us against 62.3 / 62.4
    # for the grouped m16 row; with ``sl`` level). 3-4 tokens: ANY's 2-4-token row since round 20 (H100: 80.0 /
    # 81.2 us against 85.3 / 86.1 for the two-stream row at 3 tokens, level at 4, but 64.2 / 65.0 against 60.0 /
    # 60.4 at 2)
    (GPT_OSS_20B, 2, _decode(64, 256, 4, 3, 64, 256, 4, 3, px=True)),
    (GPT_OSS_20B, 4, _GPT_OSS_4_TOKENS),
    # 65-256 tokens since round 21: m16 up to 96, then plain m32 blocks (no small blocks, no tail launch). The m64
    # row with m32 small blocks it replaces trailed the peer at 96 and 192 tokens (0.93x, 0.96x), was 1.05x at 128
    # and 1.19x at 256; H100 A/B of the bench: m16 1.22x at 96, m32 1.16-1.17x at 192-224 and 1.26x at 128 and 256
    # (ANY's m32/16+16 row with tail launches: 0.96-0.97x at 192). BENCHMARKS.md round 21.
    (GPT_OSS_20B, 96, _GPT_OSS_M16),
    (GPT_OSS_20B, 256, _grouped(32, 64, 128, 4, 3, 64, 128, 4, 3, sl=True)),
    # 257-640 tokens on m64 blocks since round 28: the m128 row (36-80 pairs per expert in 128-row blocks) read 0.70x
    # the peer at 288-448 tokens, 443-479 us; this one 319-386 (1.00-1.16x). From 768 the m128 row is ahead again
    # (487 against 516 us). H100 A/B of the bench, BENCHMARKS.md round 28
    (GPT_OSS_20B, 640, _grouped(64, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=32, tail=32, apart=(_R128, True),
                                sl=True)),
    (GPT_OSS_20B, 1024, _grouped(128, 128, 64, 8, 3, 128, 128, 8, 3, joint=True, small=32, tail=32,
                                 sl=True)),
    # 1025-2048 and 3073-4096 tokens (2049-3072: m128 blocks since round 28): scales at load, since round 17 (H100
    # tune 1761 against 1862 us at 4096; A/B of the bench 1795.7 / 1817.5 against 1834.2 / 1823.7 us, level at 2048;
    # at 8192 the tune kept the row without, and round 28's A/B had the two level there)
    (GPT_OSS_20B, 2048, _GPT_OSS_20B_PREFILL),
    (GPT_OSS_20B, 3072, _M128_K64),
    (GPT_OSS_20B, 4096, _GPT_OSS_20B_PREFILL),
    (GPT_OSS_20B, 1 << 62, _grouped(256, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=64, p16=True)),
    (DEEPSEEK_LIKE, 4, _decode(32, 256, 4, 4, 64, 256, 4, 3, px=True, joint=True, sl=(True, False))),
    # GEMM2 capped at 128 registers since round 20 (4 programs per SM, no spill on this layer's K = 2048; on
    # gpt-oss's it spills and lost 3-5%): H100 A/B of the bench 1-3% less at 16-256 tokens, the most at 128-256
    (DEEPSEEK_LIKE, 256, _grouped(16, 32, 256, 4, 4, 64, 256, 4, 3, px=True, joint=True, sl=(True, False),
                                  regs=(128, 128))),
    (DEEPSEEK_LIKE, 448, _M16_R128),
    (DEEPSEEK_LIKE, 768, _M32_PLAIN),
    (DEEPSEEK_LIKE, 1024, _grouped(32, 64, 128, 4, 3, 64, 128, 4, 3, small=16, tail=16, apart=(True, True))),
    # 1025-1536 tokens on plain m64 blocks since round 28 (H100 A/B of the bench: 2297-2317 us against 2349-2371 at
    # 1280, 2372-2393 against 2482-2487 at 1536; to 2048 it lost, 3211 against 2707), at 3 stages since round 29 (H100
    # tune at 1536 2191 against 2364 us for 4 stages; A/B of the bench 2164 / 2213 against 2231 / 2280 us at 1280,
    # 2305 / 2288 against 2368 / 2361 at 1536)
    (DEEPSEEK_LIKE, 1536, _grouped(64, 64, 128, 4, 3, 64, 128, 4, 3, p16=True)),
    (DEEPSEEK_LIKE, 2048, _grouped(64, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=32, tail=16,
                                   apart=(True, False), p16=True)),
    (DEEPSEEK_LIKE, 3072, _M128_K64),
    (DEEPSEEK_LIKE, 4096, _grouped(128, 64, 128, 8, 4, 128, 128, 8, 4, joint=True, small=32, tail=32, p16=True)),
    (DEEPSEEK_LIKE, 1 << 62, _grouped(256, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=64, tail=16,
                                      apart=(True, True), p16=True)),
    (ANY, 1, _GPT_OSS_1_TOKEN),
    # GEMM2 split over K since round 20: at 4 tokens on gpt-oss-120b its 720 programs of 128 registers took 1.4
    # waves of 528 slots, split 1440 take 2.7 (H100 A/B of the bench: 101.6-103.4 us against 106.5-108.3 at 4
    # tokens, 3-4% less at 3, level at 2; on DeepSeek-like, with 2048 programs unsplit, 4-5% more)
    (ANY, 4, _GPT_OSS_4_TOKENS),
    (ANY, 128, _GPT_OSS_M16),
    (ANY, 256, _grouped(16, 64, 256, 4, 3, 64, 256, 4, 3, px=True)),
    (ANY, 448, _M16_R128),
    (ANY, 768, _M32_PLAIN),
    (ANY, 1024, _grouped(32, 64, 128, 4, 3, 64, 128, 4, 3, small=16, tail=16, apart=(_R168, True), sl=True)),
    # 1025-1536 tokens on plain m64/32 blocks since round 28 (H100 A/B of the bench: 1146-1152 us against 1171-1178
    # at 1280, 1169-1185 against 1211-1234 at 1536); to 2048 it lost (1584 against 1390)
    (ANY, 1536, _grouped(64, 64, 128, 4, 3, 64, 128, 4, 3, small=32, p16=True)),
    (ANY, 2048, _grouped(64, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=32, tail=32, apart=(_R128, True),
                         sl=True, p16=True)),
    # 2049-3072 tokens on DeepSeek-like's and gpt-oss-20b's m128 row since round 29 (H100 tune at 3072 1688 against
    # 1756 us; A/B of the bench 1720 / 1721 against 1777 / 1799 us)
    (ANY, 3072, _M128_K64),
    (ANY, 4096, _grouped(128, 128, 64, 8, 3, 128, 128, 8, 3, joint=True, small=32, tail=32, sl=True, p16=True)),
    (ANY, 1 << 62, _grouped(256, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=64, tail=16, apart=(True, True),
                            sl=True, p16=True)),
)

#: Configurations ``mxfp4-plugin bench --tune`` tries, and the token counts it tries them at:
#: the shipped rows and their nearest rivals on H200 (BENCHMARKS.md). With weights as A, one
#: warpgroup (4 warps) per 64 weight rows lets the decoded weights go straight into the MMA's
#: registers (BF16X2 layout), so ``joint`` GEMM1 tiles of 64 gate + 64 up rows run 8 warps.
CANDIDATES: tuple[MoEConfig, ...] = (
    # decode: one (token, slot) pair per program
    _decode(64, 256, 4, 3, 64, 128, 4, 3, split_k=2, px=True),
    _decode(64, 256, 4, 3, 64, 256, 4, 3, px=True),
    _decode(64, 128, 4, 3, 64, 128, 4, 3, px=True),
    _decode(64, 128, 4, 3, 64, 128, 4, 3),
    _decode(64, 256, 4, 3, 64, 256, 4, 3),
    # GEMM1 split over K too (partial sums, then gate_kernel): at 1 token gpt-oss-120b's GEMM1 has only
    # 180 programs of 64 rows (8.7% of the SMs' warp slots busy, 31% of DRAM bandwidth in Nsight).
    # First at 1 token on both gpt-oss layers (38.8 / 38.2 us against 40.8 / 40.4 for the unsplit row,
    # round 10); behind from 4 tokens and on the DeepSeek-like layer (K = 4096 already gives 16 steps).
    _decode(64, 128, 4, 3, 64, 128, 4, 3, split_k=2, px=True, split_k1=2),
    _decode(64, 256, 4, 3, 64, 128, 4, 3, split_k=2, px=True, split_k1=2),
    _decode(64, 128, 4, 3, 64, 128, 4, 3, split_k=2, px=True, split_k1=4),
    # GEMM1 of 32 gate and 32 up rows as one 64-row operand (``joint``) per 4-warp program: one weight stream and
    # one accumulator instead of two, 128 registers at K steps of 256 (4 programs per SM against the two-stream
    # n64 tile's 165: 3) and 80 at 128 (6 per SM): more warps per SM for the latency of each step, twice the
    # programs (1440 at 4 tokens on gpt-oss-120b), and at 1 token a whole GEMM1 in one wave without split-K
    # and its gating pass (sm90 SASS, round 19). A/B of the bench on the H100 (round 19): k256 s4 shipped (1 token
    # 2% faster on gpt-oss, DeepSeek-like 4 tokens 3%, gpt-oss-120b 1%, gpt-oss-20b level: not taken there); the
    # k128 s4 tiles 5-15% slower at 4 tokens, and 12% at 1 token on DeepSeek-like
    _decode(32, 256, 4, 3, 64, 256, 4, 3, px=True, sl=True, joint=True),
    _decode(32, 256, 4, 4, 64, 256, 4, 3, px=True, sl=True, joint=True),
    _decode(32, 256, 4, 5, 64, 256, 4, 3, px=True, sl=True, joint=True),
    _decode(32, 128, 4, 4, 64, 256, 4, 3, px=True, sl=True, joint=True),
    _decode(32, 128, 4, 4, 64, 128, 4, 3, split_k=2, px=True, sl=True, joint=True),
    _decode(32, 128, 4, 6, 64, 128, 4, 3, split_k=2, px=True, sl=True, joint=True),
    _decode(32, 256, 4, 4, 64, 256, 4, 3, px=True, joint=True),
    # GEMM2 at 2-4 tokens (round 20, H100 A/B of the bench, GEMM1 joint k256 s4): split over K (shipped on gpt-oss)
    # 3-5% less at 3-4 tokens on gpt-oss-120b, 4-5% more on DeepSeek-like; K steps of 128 (80 registers, 6
    # programs per SM: 720 programs in one wave) 1.5% less on gpt-oss-120b at 4 tokens, 9% more on DeepSeek-like;
    # both, 2-4% behind the split alone
    _decode(32, 256, 4, 4, 64, 128, 4, 3, px=True, sl=True, joint=True),
    _decode(32, 256, 4, 4, 64, 128, 4, 3, split_k=2, px=True, sl=True, joint=True),
    # the same GEMM1 tile on the grouped path (16-256 tokens): ptxas gives it 168 registers there (3 programs per
    # SM, like the two-stream n64 tile), capped at 128 (4 per SM) it keeps every value in registers (sm90 SASS:
    # no local memory; 24.9 loop instructions per weight word with ``sl``, against 25.0 for the shipped tile).
    # Round 19 (H100, A/B of the bench, GEMM2 as shipped): the s4 capped tile 2-5% faster at 16 tokens on every
    # layer, level at 256 (shipped up to 128 tokens); the k128 tile (85 registers, 5 per SM) 5-15% slower
    _grouped(16, 32, 256, 4, 3, 64, 256, 4, 3, px=True, joint=True, sl=True, regs=(128, None)),
    _grouped(16, 32, 256, 4, 4, 64, 256, 4, 3, px=True, joint=True, sl=True, regs=(128, None)),
    _grouped(16, 32, 256, 4, 4, 64, 256, 4, 3, px=True, joint=True, sl=True, regs=(128, 128)),
    _grouped(16, 32, 128, 4, 4, 64, 256, 4, 3, px=True, joint=True, sl=True),
    # the m16 rows' GEMM2 in K steps of 128 with scales at load, capped at 80 registers: 6 programs per SM where the
    # shipped k256 tile holds 3 (gpt-oss, 168 registers) or 4 (DeepSeek-like, capped at 128), and on K = 2880 a last
    # partial step that wastes 64 columns of 128 instead of 192 of 256 (sm90 SASS: no spill; 28.8 loop instructions
    # per weight word against 27.0 on gpt-oss, 25.4 against 27.1 on DeepSeek-like). Round 26 (H200 A/B of the bench,
    # two runs each): gpt-oss-120b 2-3.5% faster at 16-64 tokens, gpt-oss-20b 2%, DeepSeek-like level; the 256-token
    # runs within their spread. Not shipped: on the H100 (round 28, A/B of the bench with the last on ANY's
    # 129-256-token row) 5-8% slower at 16-256 tokens on gpt-oss-120b and DeepSeek-like, 6% on gpt-oss-20b at 16-64,
    # as K steps of 128 were in round 15. The last: ANY's 129-256-token row with this GEMM2
    _grouped(16, 32, 256, 4, 4, 64, 128, 4, 3, px=True, joint=True, sl=True, regs=(128, 80)),
    _grouped(16, 32, 256, 4, 4, 64, 128, 4, 4, px=True, joint=True, sl=True, regs=(128, 80)),
    _grouped(16, 64, 256, 4, 3, 64, 128, 4, 4, px=True, sl=(False, True), regs=(None, 80)),
    # GEMM2 in steps of 256 + 64 K (block_k2): K = 2880 in 9 whole steps, no last step of 64 decoding 192 zeros
    # (sm90 SASS, gpt-oss-120b's K loop: 165 registers, 3 programs per SM, 28.2 instructions per weight word over
    # 2880 K against 27.0 over 3072; with scales at load 167, 25.9; the 20b m32 row's k128 + 32 capped at 128:
    # 4 per SM, 31.8 over 2880 against 35.2 over 2944). Round 27. Not shipped: the H100 A/B of the bench (round 28)
    # had the first two on the m16 rows and the third on ANY's 129-256 row level or 1-3% slower at 16-256 tokens,
    # the fourth on gpt-oss-20b's 97-256 row 5-6% slower at 256 tokens
    _grouped(16, 32, 256, 4, 4, 64, 256, 4, 3, px=True, joint=True, sl=(True, False), regs=(128, None), plus=(0, 64)),
    _grouped(16, 32, 256, 4, 4, 64, 256, 4, 3, px=True, joint=True, sl=True, regs=(128, None), plus=(0, 64)),
    _grouped(16, 64, 256, 4, 3, 64, 256, 4, 3, px=True, plus=(0, 64)),
    _grouped(32, 64, 128, 4, 3, 64, 128, 4, 3, sl=True, regs=(None, 128), plus=(0, 32)),
    # the m64 and m128 rows' GEMM2 in steps of 128 + 32 (1025-4096 tokens; gpt-oss-20b 257-1024): one program per
    # SM as before, no spill, 3-15% fewer instructions per word over 2% less K (ANY's 4096-token row: 30.8 / 40.8 /
    # 34.8 per loop against 32.4 / 45.6 / 36.4); the m256 rows spill with it. Round 27. Not shipped: the H100 A/B of
    # the bench (round 28: ANY 2048 / 4096 and gpt-oss-20b 1024): gpt-oss-120b level at 1024 tokens, 5-10% slower
    # at 2048-4096; gpt-oss-20b 6-7% slower at 1024
    # (the tune stores the partials in bf16 where the shipped row does)
    _grouped(128, 128, 64, 8, 3, 128, 128, 8, 3, joint=True, small=32, tail=32, sl=True, plus=(0, 32)),
    _grouped(64, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=32, tail=32, apart=(_R128, True), sl=True,
             plus=(0, 32)),
    # grouped, a few pairs per expert
    _grouped(16, 64, 128, 4, 3, 64, 128, 4, 3, px=True),
    _grouped(16, 64, 128, 4, 3, 64, 128, 4, 3),
    _grouped(16, 64, 256, 4, 3, 64, 256, 4, 3, px=True),
    _grouped(32, 64, 128, 4, 3, 64, 128, 4, 3, px=True),
    _grouped(32, 64, 128, 4, 3, 64, 128, 4, 3),
    _grouped(32, 128, 128, 8, 3, 128, 128, 8, 3, px=True),
    _grouped(16, 64, 128, 4, 4, 64, 128, 4, 4, px=True),
    _grouped(16, 64, 256, 4, 4, 64, 256, 4, 4, px=True),
    _grouped(32, 64, 256, 4, 3, 64, 256, 4, 3, px=True),
    # grouped, many pairs per expert
    _grouped(64, 64, 64, 4, 4, 64, 64, 4, 4),
    _grouped(64, 64, 128, 4, 3, 64, 128, 4, 3),
    _grouped(64, 64, 128, 4, 4, 64, 128, 4, 4),
    _grouped(128, 64, 64, 8, 3, 128, 64, 8, 3, joint=True),
    _grouped(128, 64, 64, 8, 3, 64, 64, 4, 3, joint=True),
    _grouped(128, 64, 64, 8, 4, 128, 64, 8, 4, joint=True),
    _grouped(64, 64, 128, 8, 3, 128, 128, 8, 3, joint=True),
    _grouped(128, 64, 128, 8, 3, 128, 128, 8, 3, joint=True),
    _grouped(128, 64, 128, 8, 4, 128, 128, 8, 4, joint=True),
    _grouped(256, 64, 64, 8, 3, 128, 64, 8, 3, joint=True),
    _grouped(256, 64, 64, 8, 4, 128, 64, 8, 4, joint=True),
    _grouped(256, 64, 128, 8, 3, 128, 128, 8, 3, joint=True),
    _grouped(256, 64, 64, 8, 3, 128, 64, 8, 3, weights_as_a=False),
    # an expert's last, partly filled block on a narrower MMA (``small_m``): with about block_m pairs
    # per expert (the token counts where each size wins), a third of the blocks hold a handful
    _grouped(32, 64, 128, 4, 3, 64, 128, 4, 3, small=16),
    _grouped(64, 64, 128, 4, 3, 64, 128, 4, 3, small=32),
    _grouped(64, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=32),
    _grouped(128, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=32),
    _grouped(128, 64, 128, 8, 4, 128, 128, 8, 4, joint=True, small=32),
    _grouped(128, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=64),
    _grouped(256, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=64),
    _grouped(256, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=128),
    _grouped(128, 64, 128, 8, 4, 128, 128, 8, 4, joint=True, small=16),
    _grouped(256, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=32),
    _grouped(128, 64, 128, 8, 4, 64, 128, 4, 3, joint=True, small=32),  # GEMM2 at 2 programs per SM
    # GEMM2 with 128 weight rows per 4-warp program (two 64-row MMAs per K step): half the programs, each
    # twice as long (DeepSeek-like's n64 k256 GEMM2 runs only 8 K steps), and fewer loop instructions per
    # weight word (sm90 SASS: 25 against 28.5). 256 rows (n256 k64 / k32) lost to 128 everywhere.
    _decode(64, 256, 4, 3, 128, 128, 4, 3, px=True),
    _grouped(16, 64, 256, 4, 4, 128, 128, 4, 3, px=True),
    _grouped(16, 64, 256, 4, 4, 128, 128, 4, 4, px=True),
    _grouped(16, 64, 256, 4, 4, 128, 64, 4, 4, px=True),
    _grouped(16, 64, 128, 4, 3, 128, 128, 4, 3, px=True),
    # GEMM2 capped at 128 registers (168 uncapped: 4 programs per SM instead of 3, no spill in the K loop).
    # Nsight at 256 tokens on the DeepSeek-like layer (round 13): our GEMM2 issues on 54% of the cycles with 12
    # warps per SM, the peer's on 72% with 16 (124 registers), though it executes 13% more instructions. The
    # cap did not pay: grouped 1-5% behind the uncapped tile (tune, 16-256 tokens); the decode row at 2 and 4
    # tokens level with it in an A/B of the bench (DeepSeek-like 163.8 / 164.6 against 164.2 / 164.2 us). Beside
    # round 19's joint GEMM1 (also 4 per SM) on the H100 (round 20): DeepSeek-like 1-3% less at 16-256 tokens
    # (shipped), gpt-oss 3-5% more (there it spills: K = 2880 with bias)
    _decode(64, 256, 4, 3, 64, 256, 4, 3, px=True, regs=(None, 128)),
    _grouped(16, 64, 256, 4, 4, 128, 128, 4, 3, px=True, regs=(None, 128)),
    # H100 at 16-256 tokens (round 15): the H200 rows read at 62-67% of the copy roofline there against the
    # peer's 72-76% (Nsight, gpt-oss-120b at 64 tokens: our GEMM1 65% of DRAM peak, 41% issue, 16 warps per SM;
    # the peer's 16x256 tile 81%, 69%). More weight bytes in flight per SM: deeper or wider K steps, 256-row
    # programs like the peer's, and the shipped rows with scales at load. None won: the tune's first on every
    # layer was the older g1(n64 k256 w4 s3 px) g2(n64 k256 w4 s3 px), now shipped; its s4 variants 1-6% behind
    # (but DeepSeek-like at 256 tokens: s4 sl 27%), the 8-warp and s5 tiles 15-30%.
    _grouped(16, 64, 128, 4, 3, 64, 128, 4, 3, px=True, sl=True),
    _grouped(16, 64, 256, 4, 4, 128, 128, 4, 3, px=True, sl=True),
    _grouped(16, 64, 256, 4, 4, 64, 256, 4, 4, px=True, sl=True),
    _grouped(16, 64, 128, 4, 5, 64, 128, 4, 5, px=True, sl=True),
    _grouped(16, 128, 128, 8, 3, 128, 128, 8, 3, px=True, sl=True),
    _grouped(16, 64, 128, 8, 4, 128, 128, 8, 4, joint=True, px=True, sl=True),
    # prefill GEMM1 with 256 weight rows (128 gate + 128 up) x 128 tokens per 8-warp program: each
    # activation tile read from L2 serves twice the rows of the 128-row tiles (241 registers, 66 KB).
    # First for gpt-oss-120b at 4096 tokens (2363 us against 2519 for the 128-row tile, round 10);
    # behind at 8192 and on the DeepSeek-like layer. k128 (s2) and 16-warp variants lost everywhere.
    _grouped(128, 128, 64, 8, 3, 128, 128, 8, 3, joint=True, small=32),
    _grouped(128, 128, 64, 8, 4, 256, 64, 8, 4, joint=True, small=32),
    _grouped(128, 128, 64, 8, 3, 64, 128, 4, 3, joint=True, small=32),
    # an expert's last block with a tail (``tail_m``): with about block_m pairs per expert, half the experts
    # have a few more, which otherwise take a block of their own that decodes all the weights again. First
    # where each expert gets about 128 pairs (round 11: gpt-oss-120b at 4096 tokens 2159 us against 2345,
    # DeepSeek-like 4558 against 4983). In one launch, the tail program's registers cost the 4-warp m32
    # and 8-warp m64 kernels a program per SM (GEMM1 156 -> 176, 118 -> 130): they lost (1149 against 1062
    # us at 1024 tokens), hence ``tail_launch`` (tails apart) there.
    _grouped(32, 64, 128, 4, 3, 64, 128, 4, 3, small=16, tail=16, apart=(True, True)),
    _grouped(32, 64, 128, 4, 3, 64, 128, 4, 3, small=16, tail=32, apart=(True, True)),
    _grouped(64, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=32, tail=16, apart=(True, False)),
    _grouped(64, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=32, tail=32, apart=(True, True)),
    _grouped(128, 64, 128, 8, 4, 128, 128, 8, 4, joint=True, small=32, tail=32),
    _grouped(128, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=32, tail=32),
    _grouped(128, 128, 64, 8, 3, 128, 128, 8, 3, joint=True, small=32, tail=32),
    # 256-token blocks: gpt-oss-120b past 4096 tokens takes m256/64+16 since round 12 (A/B of the bench, two
    # runs each: 3784.6 / 3785.0 us against 3829.5 / 3833.9 for round 11's m256/32+16).
    # A tail of 16 is the most that fits in one config (GEMM1 226 KB of shared memory at s3; 32 needs 238);
    # tails of 32 or 64 (gpt-oss-20b at 4096 / 8192 tokens: 512 +- 22 and 1024 +- 31 pairs
    # per expert) in a tail launch of shorter K steps (k64 s4: 164 / 180 KB). Round 12: no gain on
    # gpt-oss-20b (tune 3513 / 3532 us against 3444 for m256/64 at 8192); first in the tune at 8192 on the
    # other layers, but 3.5-4% behind the shipped rows in an A/B of the bench (two runs each, one process:
    # gpt-oss-120b 3935 / 3952 against 3795 / 3779 us, DeepSeek-like 7753 / 7792 against 7453 / 7469).
    # Also lost (round 12's second tune): GEMM2 of these blocks on one warpgroup, n64 k64 w4 s3 (252
    # registers, two programs per SM): 3-12% behind the n128 w8 tile on every layer at 4096 and 8192.
    # Round 18 (H100, gpt-oss-120b): the tune put m256/32+16 without ``sl`` 6% ahead of the ANY row at 8192, and
    # DeepSeek-like's 2048 row (m64/32+16) 6% ahead at 2048; in the bench's A/B 1.2% behind and within the spread.
    _grouped(256, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=32, tail=16, apart=(True, True)),
    _grouped(256, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=64, tail=16, apart=(True, True)),
    _grouped(256, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=64, tail=32, apart=(_K64S4, _K64S4)),
    _grouped(256, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=64, tail=64, apart=(_K64S4, _K64S4)),
    # gpt-oss-20b's prefill rows with scales at load (``sl``), as the ANY rows that gpt-oss-120b takes: its rows
    # past 1024 tokens were tuned without (round 11, H200) and trailed the peer by 1-4% at 4096-8192 on both GPUs.
    # Round 17 (H100): the m256/64 one first at 4096 (shipped there), behind the row without at 8192
    _grouped(256, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=64, sl=True),
    _grouped(128, 64, 128, 8, 3, 128, 128, 8, 3, joint=True, small=32, tail=32, sl=True),
)


def worth_trying(config: MoEConfig, num_tokens: int) -> bool:
    """Which candidates ``--tune`` times at a token count (the others cannot win there)."""
    if not config.grouped:
        return num_tokens <= 16
    if config.block_m >= 128:
        return num_tokens >= 1024
    return (config.block_m <= 32 and num_tokens <= 1024) or (config.block_m >= 64 and num_tokens >= 256)


def select(num_tokens: int, shape: ShapeKey) -> MoEConfig:
    return TABLE[_row_index(num_tokens, shape)][2]


def span(num_tokens: int, shape: ShapeKey) -> tuple[int, int]:
    """The token counts ``(first, last)`` that the row ``select`` picks here serves on this shape."""
    at = _row_index(num_tokens, shape)
    below = [m for key, m, _ in TABLE[:at] if (key is ANY or key == shape) and m < num_tokens]
    return max(below, default=0) + 1, TABLE[at][1]


def _row_index(num_tokens: int, shape: ShapeKey) -> int:
    for at, (key, max_tokens, _) in enumerate(TABLE):
        if (key is ANY or key == shape) and num_tokens <= max_tokens:
            return at
    raise LookupError(f"configs.TABLE: no row for {num_tokens} tokens and shape {shape}")
