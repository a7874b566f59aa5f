"""The SGLang adapter's flag table (imports no SGLang, so it runs in the core stage)."""

import pytest

from mxfp4_plugin.adapters.sglang.flags import FLASHINFER_MXFP4, MOE_RUNNER_BACKEND_TO_PLUGIN, plugin_backend_for
from mxfp4_plugin.oracle import AUTO, BackendRequestError
from mxfp4_plugin.platform import Platform

CPU = Platform("cpu")
H200 = Platform("cuda", (9, 0))
B200 = Platform("cuda", (10, 0))


@pytest.mark.parametrize("value,expected", [
    ("auto", AUTO), (None, AUTO), ("triton_kernel", "triton_kernels"), ("marlin", "marlin"),
    ("flashinfer_cutlass", "flashinfer_cutlass"), ("flashinfer_trtllm", "flashinfer_trtllm"),
    ("mxfp4_plugin_triton", "triton"), ("mxfp4_plugin_reference", "reference"),
])
def test_direct_values(value, expected):
    for platform in (CPU, H200, B200):
        assert plugin_backend_for(value, platform) == expected


@pytest.mark.parametrize("platform,precision,expected", [
    (H200, "default", "flashinfer_cutlass"), (H200, "bf16", "flashinfer_cutlass"), (H200, None, "flashinfer_cutlass"),
    (B200, "default", "flashinfer_trtllm_mxfp8"), (B200, "bf16", "flashinfer_trtllm"),
])
def test_flashinfer_mxfp4_follows_the_gpu_and_precision(platform, precision, expected):
    assert plugin_backend_for("flashinfer_mxfp4", platform, precision) == expected


@pytest.mark.parametrize("platform,precision", [(CPU, "default"), (H200, "fp8"), (Platform("cuda", (8, 0)), "bf16")])
def test_flashinfer_mxfp4_without_counterpart(platform, precision):
    with pytest.raises(BackendRequestError, match=r"--moe-runner-backend flashinfer_mxfp4 .*precision"):
        plugin_backend_for("flashinfer_mxfp4", platform, precision)


@pytest.mark.parametrize("value", ["deep_gemm", "triton", "aiter", "cutlass"])
def test_values_without_counterpart_name_what_works(value):
    with pytest.raises(BackendRequestError) as err:
        plugin_backend_for(value, H200)
    assert f"--moe-runner-backend {value!r}" in str(err.value)
    for name in [*MOE_RUNNER_BACKEND_TO_PLUGIN, "flashinfer_mxfp4"]:
        assert name in str(err.value)


def test_table_targets_are_backend_names():
    targets = {*MOE_RUNNER_BACKEND_TO_PLUGIN.values(), *FLASHINFER_MXFP4.values()} - {AUTO}
    assert all(t.replace("_", "").isalnum() and t == t.lower() for t in targets)
