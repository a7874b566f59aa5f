"""Probe, not product code: a warp-specialised MXFP4 x bf16 GEMM on Hopper in Gluon (Triton 3.6).

The question it answers: does taking the decode out of the MMA warps (warp specialisation) raise the
prefill matmul rate above the lock-step kernel's (our GEMM1 ~44%, triton_kernels ~50% of the bf16
rate at 4096 tokens on gpt-oss-120b, BENCHMARKS.md round 9)? Per program: BN weight rows of one expert
x BM tokens routed to it (dense, pre-grouped: gpt-oss-120b's GEMM1 at 128 tokens per expert), K looped.
A loader warp brings the MXFP4 words and the activation tile with TMA into rings; a decoding warpgroup
turns the words into bf16 in a shared-memory ring (the plugin's BF16X2 bit trick, with a word layout
whose four results are consecutive K pairs); two MMA warpgroups run wgmma on both rings.

    python3 benchmarks/gluon_ws_probe.py                 # on the GPU: error vs float32, time, % of matmul rate
    python3 benchmarks/gluon_ws_probe.py compile BN=128  # no GPU needed: sm90 cubin and ttgir in /tmp/gp

DEBUG switches (timing only) cut one part at a time: 1 no decode (constant tile), 2 no MMA, 3 no activation
loads, 4 neither decode nor MMA, 5 no scale loads in the loop. Findings (H200, BENCHMARKS.md round 9): BN=128, BK=128 is exact (3e-7)
but runs at 31% of the matmul rate, and 1743 us of its 2251 remain with neither decode nor MMA: the
loop's handshakes, not the decode or the tensor cores, bound it. BN=256, BK=64 gives a relative error
of 0.15 (a layout bug, not found yet).
"""
import pathlib
import sys
import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor
from triton.experimental.gluon.language.nvidia.hopper import (tma, mbarrier, fence_async_shared, warpgroup_mma,
                                                             warpgroup_mma_wait)

from mxfp4_plugin import mx
from mxfp4_plugin.bench.timing import eager_seconds, matmul_rate

try:  # installed package, else a source checkout on PYTHONPATH
    from mxfp4_plugin.kernels.moe_details import dequant, layout
except ImportError:
    from kernels.moe_details import dequant, layout

# the plugin's BF16X2 decode (scale bytes carry the 2**126): four bf16 pairs per word
DECODE_PTX: gl.constexpr = gl.constexpr(dequant._decode_ptx(fold=True))


@gluon.jit
def _loader(w_desc, x_desc, bars, rings, w_row, x_row, num_k, DEBUG: gl.constexpr):
    w_ready, w_empty, a_ready, a_empty, x_ready, x_empty = bars
    w_ring, a_ring, x_ring = rings
    WS: gl.constexpr = w_ring.type.shape[0]
    XS: gl.constexpr = x_ring.type.shape[0]
    WK: gl.constexpr = w_desc.block_type.shape[1]
    XK: gl.constexpr = x_desc.block_type.shape[1]
    for i in range(num_k):
        sw = i % WS
        mbarrier.wait(w_empty.index(sw), ((i // WS) & 1) ^ 1)
        mbarrier.expect(w_ready.index(sw), w_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(w_desc, [w_row, i * WK], w_ready.index(sw), w_ring.index(sw))
        sx = i % XS
        mbarrier.wait(x_empty.index(sx), ((i // XS) & 1) ^ 1)
        if DEBUG == 3:  # no activation loads (the MMA reads whatever the ring holds)
            mbarrier.arrive(x_ready.index(sx))
        else:
            mbarrier.expect(x_ready.index(sx), x_desc.block_type.nbytes)
            tma.async_copy_global_to_shared(x_desc, [x_row, i * XK], x_ready.index(sx), x_ring.index(sx))


@gluon.jit
def _decoder(w_desc, x_desc, bars, rings, s_ptr, stride_s, w_row, num_k, DEBUG: gl.constexpr):
    w_ready, w_empty, a_ready, a_empty, x_ready, x_empty = bars
    w_ring, a_ring, x_ring = rings
    WS: gl.constexpr = w_ring.type.shape[0]
    AS: gl.constexpr = a_ring.type.shape[0]
    BN: gl.constexpr = w_ring.type.shape[1]
    WK: gl.constexpr = w_ring.type.shape[2]  # words per row per step
    NW: gl.constexpr = gl.num_warps()
    LW: gl.constexpr = gl.BlockedLayout([1, 4], [32 // (WK // 4), WK // 4], [NW, 1], [1, 0])  # 4 words: a scale block
    rows = gl.arange(0, BN, layout=gl.SliceLayout(1, LW))
    cols = gl.arange(0, WK, layout=gl.SliceLayout(0, LW))
    s_ptrs = s_ptr + (w_row + rows)[:, None].to(gl.int64) * stride_s + (cols // 4)[None, :]
    a_layout32: gl.constexpr = gl.NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=32, rank=2)
    # scales two steps ahead, loaded after the step's fence: fence_async_shared (MEMBAR) waits for every
    # memory operation the thread has in flight, so a global load issued before it stalls the decoder
    s_next = gl.load(s_ptrs).to(gl.int32)
    s_next2 = gl.load(s_ptrs + WK // 4, mask=1 < num_k, other=0).to(gl.int32)
    for i in range(num_k):
        s = s_next + 126
        s_next = s_next2
        sw = i % WS
        mbarrier.wait(w_ready.index(sw), (i // WS) & 1)
        words = w_ring.index(sw).load(LW)
        mbarrier.arrive(w_empty.index(sw))
        r0, r1, r2, r3 = gl.inline_asm_elementwise(DECODE_PTX, "=r,=r,=r,=r,r,r", [words, (s << 7) | (s << 23)],
                                                   dtype=(gl.int32, gl.int32, gl.int32, gl.int32), is_pure=True,
                                                   pack=1)
        # join appends its axis last: [.., k, j] = r_(2j + k) for join(join(r0, r2), join(r1, r3)), so the
        # row-major flattening gives r0, r1, r2, r3 (elements 0..7 of each word in K order)
        tile = gl.reshape(gl.join(gl.join(r0, r2), gl.join(r1, r3)), [BN, 4 * WK])
        if DEBUG == 1 or DEBUG == 4:
            tile = gl.zeros_like(tile) + 0x3F803F80
        sa = i % AS
        mbarrier.wait(a_empty.index(sa), ((i // AS) & 1) ^ 1)
        a_ring.index(sa)._reinterpret(gl.int32, [BN, 4 * WK], a_layout32).store(tile)
        fence_async_shared()
        mbarrier.arrive(a_ready.index(sa))
        if DEBUG != 5:  # DEBUG 5: the first step's scales for every step (no global load in the loop)
            s_next2 = gl.load(s_ptrs + (i + 2) * (WK // 4), mask=(i + 2) < num_k, other=0).to(gl.int32)


@gluon.jit
def _mma(bars, rings, num_k, BM: gl.constexpr, num_warps: gl.constexpr, DEBUG: gl.constexpr):
    w_ready, w_empty, a_ready, a_empty, x_ready, x_empty = bars
    w_ring, a_ring, x_ring = rings
    AS: gl.constexpr = a_ring.type.shape[0]
    XS: gl.constexpr = x_ring.type.shape[0]
    BN: gl.constexpr = a_ring.type.shape[1]
    mma_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                         instr_shape=[16, BM, 16])
    acc = gl.zeros((BN, BM), dtype=gl.float32, layout=mma_layout)
    for i in range(num_k):
        sa = i % AS
        sx = i % XS
        mbarrier.wait(a_ready.index(sa), (i // AS) & 1)
        mbarrier.wait(x_ready.index(sx), (i // XS) & 1)
        if DEBUG != 2 and DEBUG != 4:  # DEBUG 2: no MMA (times the loads and the decode alone); 4: neither
            acc = warpgroup_mma(a_ring.index(sa), x_ring.index(sx).permute((1, 0)), acc, is_async=True)
            acc = warpgroup_mma_wait(num_outstanding=1, deps=(acc, ))
        mbarrier.arrive(a_empty.index((i + AS - 1) % AS), pred=i > 0)
        mbarrier.arrive(x_empty.index((i + XS - 1) % XS), pred=i > 0)
    acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc, ))
    return (acc, )


@gluon.jit
def ws_kernel(w_desc, x_desc, s_ptr, stride_s, y_ptr, stride_y, N, K, BM: gl.constexpr, A_STAGES: gl.constexpr,
              W_STAGES: gl.constexpr, X_STAGES: gl.constexpr, DEC_WARPS: gl.constexpr, DEC_REGS: gl.constexpr,
              num_warps: gl.constexpr, DEBUG: gl.constexpr = 0):
    BN: gl.constexpr = w_desc.block_type.shape[0]
    WK: gl.constexpr = w_desc.block_type.shape[1]
    BK: gl.constexpr = 8 * WK
    pid_n = gl.program_id(0)
    e = gl.program_id(1)
    w_row = e * N + pid_n * BN
    x_row = e * BM
    num_k = gl.cdiv(K, BK)
    w_ring = gl.allocate_shared_memory(w_desc.dtype, [W_STAGES] + w_desc.block_type.shape, w_desc.layout)
    x_ring = gl.allocate_shared_memory(x_desc.dtype, [X_STAGES] + x_desc.block_type.shape, x_desc.layout)
    a_layout: gl.constexpr = gl.NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16, rank=2)
    a_ring = gl.allocate_shared_memory(gl.bfloat16, [A_STAGES, BN, BK], a_layout)
    w_ready = gl.allocate_shared_memory(gl.int64, [W_STAGES, 1], mbarrier.MBarrierLayout())
    w_empty = gl.allocate_shared_memory(gl.int64, [W_STAGES, 1], mbarrier.MBarrierLayout())
    a_ready = gl.allocate_shared_memory(gl.int64, [A_STAGES, 1], mbarrier.MBarrierLayout())
    a_empty = gl.allocate_shared_memory(gl.int64, [A_STAGES, 1], mbarrier.MBarrierLayout())
    x_ready = gl.allocate_shared_memory(gl.int64, [X_STAGES, 1], mbarrier.MBarrierLayout())
    x_empty = gl.allocate_shared_memory(gl.int64, [X_STAGES, 1], mbarrier.MBarrierLayout())
    for j in gl.static_range(W_STAGES):
        mbarrier.init(w_ready.index(j), count=1)
        mbarrier.init(w_empty.index(j), count=1)
    for j in gl.static_range(A_STAGES):
        mbarrier.init(a_ready.index(j), count=1)
        mbarrier.init(a_empty.index(j), count=1)
    for j in gl.static_range(X_STAGES):
        mbarrier.init(x_ready.index(j), count=1)
        mbarrier.init(x_empty.index(j), count=1)
    bars = (w_ready, w_empty, a_ready, a_empty, x_ready, x_empty)
    rings = (w_ring, a_ring, x_ring)
    acc, = gl.warp_specialize([
        (_mma, (bars, rings, num_k, BM, num_warps, DEBUG)),
        (_decoder, (w_desc, x_desc, bars, rings, s_ptr, stride_s, w_row, num_k, DEBUG)),
        (_loader, (w_desc, x_desc, bars, rings, w_row, x_row, num_k, DEBUG)),
    ], [DEC_WARPS, 1], [DEC_REGS, 24])
    out_layout: gl.constexpr = gl.BlockedLayout([1, 4], [1, 32], [num_warps, 1], [0, 1])
    acc = gl.convert_layout(acc, out_layout)
    n = pid_n * BN + gl.arange(0, BN, layout=gl.SliceLayout(1, out_layout))
    m = x_row + gl.arange(0, BM, layout=gl.SliceLayout(0, out_layout))
    gl.store(y_ptr + m[None, :].to(gl.int64) * stride_y + n[:, None], acc)


def descriptors(words, x, BN, BK, BM):
    lw = gl.NVMMASharedLayout.get_default_for([BN, BK // 8], gl.int32)
    lx = gl.NVMMASharedLayout.get_default_for([BM, BK], gl.bfloat16)
    return (TensorDescriptor.from_tensor(words, [BN, BK // 8], lw), TensorDescriptor.from_tensor(x, [BM, BK], lx))


def launch(words, scales, x, y, E, N, K, BN=128, BK=128, BM=128, A_STAGES=2, W_STAGES=4, X_STAGES=3, DEC_WARPS=4,
           DEC_REGS=128, num_warps=8, maxnreg=128, DEBUG=0):
    wd, xd = descriptors(words, x, BN, BK, BM)
    ws_kernel[(N // BN, E)](wd, xd, scales, scales.stride(0), y, y.stride(0), N, K, BM, A_STAGES, W_STAGES, X_STAGES,
                             DEC_WARPS, DEC_REGS, num_warps=num_warps, maxnreg=maxnreg, DEBUG=DEBUG)


def compile_only(BN=128, BK=128, BM=128, **kw):
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource
    from triton.runtime.jit import mangle_type
    E, N, K = 2, 256, 2880
    words = torch.empty(E * N, K // 8, dtype=torch.int32)
    x = torch.empty(E * BM, K, dtype=torch.bfloat16)
    wd, xd = descriptors(words, x, BN, BK, BM)
    consts = dict(BM=BM, A_STAGES=kw.get("A_STAGES", 2), W_STAGES=kw.get("W_STAGES", 4), X_STAGES=kw.get("X_STAGES", 3),
                  DEC_WARPS=kw.get("DEC_WARPS", 4), DEC_REGS=kw.get("DEC_REGS", 128), num_warps=8, DEBUG=kw.get("DEBUG", 0))
    names = ws_kernel.arg_names
    sig = {"w_desc": mangle_type(wd), "x_desc": mangle_type(xd), "s_ptr": "*u8", "stride_s": "i32", "y_ptr": "*fp32",
           "stride_y": "i32", "N": "i32", "K": "i32"}
    sig.update({k: "constexpr" for k in consts})
    src = GluonASTSource(fn=ws_kernel, signature=sig, constexprs={(names.index(k),): v for k, v in consts.items()})
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=8, maxnreg=kw.get("maxnreg", 128)))


if __name__ == "__main__" and sys.argv[1:2] == ["compile"]:
    k = compile_only(**{key: int(value) for key, value in (a.split("=") for a in sys.argv[2:])})
    out = pathlib.Path("/tmp/gp")
    out.mkdir(exist_ok=True)
    (out / "k.ttgir").write_text(k.asm["ttgir"])
    (out / "k.cubin").write_bytes(k.asm["cubin"])
    print("compiled; smem", k.metadata.shared)


def consecutive_pair_words(codes):
    """Codes [R, K] (0..15) -> int32 words [R, K/8]: element 8q + 2r + h of word q at the bit positions
    BF16X2_SLOTS[(r, h)], so the decode's four results are the pairs (0,1), (2,3), (4,5), (6,7) in K order."""
    return layout.bf16x2_slot_words(codes.unflatten(-1, (-1, 4, 2)))  # [R, q, r, h]


def main():
    torch.manual_seed(0)
    dev = "cuda"
    E, N, K, BM = 128, 5760, 2880, 128
    codes = torch.randint(0, 16, (E * N, K), dtype=torch.uint8, device=dev)
    words = consecutive_pair_words(codes)
    scales = torch.randint(119, 124, (E * N, K // 32), dtype=torch.uint8, device=dev)
    checked = (0, E - 1)  # float32 reference weights of two experts, then the codes are dropped
    weights = {e: mx.dequantize(mx.pack(codes[e * N:(e + 1) * N]), scales[e * N:(e + 1) * N]) for e in checked}
    del codes
    x = torch.randn(E * BM, K, device=dev).to(torch.bfloat16)
    y = torch.empty(E * BM, N, device=dev, dtype=torch.float32)
    rate = matmul_rate(torch.device(dev))
    flops = 2 * E * BM * N * K
    print(f"bf16 matmul {rate / 1e12:.0f} TFLOP/s; problem E={E} N={N} K={K} tokens/expert={BM}: {flops / 1e9:.0f} GFLOP")
    variants = [dict(DEC_WARPS=4, A_STAGES=2), dict(DEC_WARPS=4, A_STAGES=3, X_STAGES=2),
                dict(BN=256, BK=64, DEC_WARPS=4, A_STAGES=3, W_STAGES=6, X_STAGES=4, DEC_REGS=96)]
    for v in variants:
        try:
            y.zero_()
            launch(words, scales, x, y, E, N, K, BM=BM, **v)
            torch.cuda.synchronize()
            errs = []
            for e in checked:
                ref = x[e * BM:(e + 1) * BM].float() @ weights[e].T
                got = y[e * BM:(e + 1) * BM]
                errs.append(((got - ref).norm() / ref.norm()).item())
            us = eager_seconds([lambda: launch(words, scales, x, y, E, N, K, BM=BM, **v)], iters=30) * 1e6
            print(f"{v}: rel err {max(errs):.1e}, {us:.1f} us, {flops / (us * 1e-6) / 1e12:.0f} TFLOP/s = "
                  f"{flops / (us * 1e-6) / rate:.0%} of the matmul rate")
            for dbg, what in ((1, "no decode"), (2, "no MMA"), (3, "no activation loads"), (4, "no decode, no MMA"),
                              (5, "no scale loads in the loop")):
                us_d = eager_seconds([lambda: launch(words, scales, x, y, E, N, K, BM=BM, DEBUG=dbg, **v)], iters=30) * 1e6
                print(f"    {what}: {us_d:.1f} us")
        except Exception as exc:
            print(f"{v}: failed: {exc!r}"[:600])


if __name__ == "__main__" and sys.argv[1:2] != ["compile"]:
    main()
