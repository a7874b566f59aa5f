"""Our Triton kernels' numerics on every CI run: the kernels run under the Triton interpreter
(CPU) in a subprocess, on fresh random data, against the float64 loop of mxfp4_testing.

Tolerances are the output dtype's rounding: the interpreter stores bfloat16 by truncation
(one ulp, 2**-7 relative, at worst) where the GPU rounds to nearest; the intermediate
activation is rounded once more. The kernel arithmetic itself is exact in float32 here.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

import triton_interpreter_cases as cases  # noqa: E402

from mxfp4_plugin.kernels.moe_details.layout import (  # noqa: E402
    ValueLayout, bf16x2_decode_reference, to_kernel_layout)

TOLERANCE = {"float16": 2.0**-9, "bfloat16": 2.0**-7}
NAMES = [*cases.CASES, cases.ROUTING_CASE]


@pytest.fixture(scope="module")
def results():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    script = Path(__file__).with_name("triton_interpreter_cases.py")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=900)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    by_name = {r["name"]: r for r in lines}
    assert by_name, f"interpreter run produced no results (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    return by_name


@pytest.mark.parametrize("name", NAMES)
def test_kernel_under_interpreter(name, results):
    assert name in results, f"case {name} did not report"
    r = results[name]
    assert "error" not in r, r.get("error")
    assert r["shape_ok"] and r["finite"], r
    if "dtype" in r:
        assert r["rel_err"] < TOLERANCE[r["dtype"]], r
    if "every_block_width_ran" in r:
        assert r["every_block_width_ran"], f"the routing must run every program the config has, ran {r['block_widths_run']}"
    if "all_remote_row_zero" in r:
        assert r["all_remote_row_zero"], "a token whose experts are all remote must get exactly zero"


def test_interpreter_did_not_leak_into_this_process():
    assert "TRITON_INTERPRET" not in os.environ or os.environ["TRITON_INTERPRET"] in ("", "0")


def test_bf16x2_layout_decodes_to_the_canonical_values():
    """The GPU's BF16X2 bit order, decoded the way the kernel's PTX does (in PyTorch), gives
    back exactly the canonical codes' values, in K order."""
    import torch

    from mxfp4_plugin import mx

    gen = torch.Generator().manual_seed(3)
    blocks = torch.randint(0, 256, (2, 5, 48), dtype=torch.uint8, generator=gen)  # K = 96: not a multiple of 64
    scales = torch.full((2, 5, 3), 127, dtype=torch.uint8)
    decoded = bf16x2_decode_reference(to_kernel_layout(blocks, ValueLayout.BF16X2))
    assert torch.equal(decoded, mx.dequantize(blocks, scales))


def test_scale_rows_are_aligned_views_of_the_same_values():
    """gpt-oss's 90-byte scale rows become a view 96 bytes apart: same shape and values; rows
    already a multiple of 16 bytes stay as they are."""
    import torch

    from mxfp4_plugin.kernels.moe_details.layout import with_aligned_rows

    scales = torch.randint(0, 256, (3, 7, 90), dtype=torch.uint8)
    aligned = with_aligned_rows(scales)
    assert torch.equal(aligned, scales) and aligned.shape == scales.shape
    assert aligned.stride() == (7 * 96, 96, 1)
    square = torch.randint(0, 256, (2, 4, 64), dtype=torch.uint8)
    assert with_aligned_rows(square).stride() == (256, 64, 1)


def test_scales_keep_slack_for_the_unmasked_scale_loads_and_without_it_they_are_masked():
    """The K loop reads scales past a row's last one (up to 2 * BLOCK_K / 32 bytes): every tensor from
    with_aligned_rows has SCALE_SLACK bytes after its last scale, aligned rows or not; scales without them (a
    plain tensor) are loaded with masks. The weight words' mask goes with K alone (EVEN_K)."""
    import torch

    from mxfp4_plugin.kernels.moe import _launch_options
    from mxfp4_plugin.kernels.moe_details.configs import GemmConfig
    from mxfp4_plugin.kernels.moe_details.layout import SCALE_SLACK, bytes_after, with_aligned_rows

    for width in (90, 64):
        scales = torch.randint(0, 256, (2, 4, width), dtype=torch.uint8)
        assert bytes_after(with_aligned_rows(scales)) == SCALE_SLACK + (-width) % 16
        assert bytes_after(scales) == 0
    step = GemmConfig(64, 256, 4, 3)
    slack = with_aligned_rows(torch.zeros((2, 4, 64), dtype=torch.uint8))
    plain = torch.zeros((2, 4, 64), dtype=torch.uint8)
    for k, scales, even_k, past_k in ((2048, slack, True, True), (2880, slack, False, True),
                                      (2048, plain, True, False), (2880, plain, False, False)):
        options = _launch_options(step, {}, False, {}, k, scales)
        assert (options["EVEN_K"], options["SCALES_PAST_K"]) == (even_k, past_k)


def test_nibbles_layout_is_the_checkpoint_itself():
    import torch

    blocks = torch.randint(0, 256, (1, 3, 16), dtype=torch.uint8)
    assert torch.equal(to_kernel_layout(blocks, ValueLayout.NIBBLES), blocks)
