"""Fused activations for triton_kernels' ``matmul_ogs`` epilogue (imports triton: load lazily).

``matmul_ogs`` calls ``ACTIVATION_FN(acc, *fn_args)`` on each fp32 accumulator tile
``[BLOCK_M, BLOCK_N]`` whose columns are interleaved gate/up pairs (as its own ``swiglu_fn``
reads them), and expects ``[BLOCK_M, BLOCK_N // 2]`` back (``reduction_n = 2``).
"""

import triton
import triton.language as tl


@triton.jit(repr=lambda _: "_mxfp4_plugin_silu_and_mul")
def silu_and_mul_fn(input):
    gate, up = tl.split(tl.reshape(input, (input.shape[0], input.shape[1] // 2, 2)))
    gate = gate.to(tl.float32)
    return gate / (1 + tl.exp(-gate)) * up.to(tl.float32)
