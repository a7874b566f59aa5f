"""What each built-in backend says about fake platforms (no GPU needed), how the oracle treats
backends never verified on a family, and the import-free package probes."""

import dataclasses
import sys

import pytest
import torch

from mxfp4_plugin import oracle
from mxfp4_plugin import platform as plat
from mxfp4_plugin.oracle import BackendRequestError, choose
from mxfp4_plugin.platform import Platform
from mxfp4_plugin.plugins import registered_backends
from mxfp4_plugin.spec import Activation, ActivationSpec, MoESpec

GPT_OSS = MoESpec(num_experts=32, top_k=4, hidden_size=2880, intermediate_size=2880,
                  activation=ActivationSpec(Activation.SWIGLU_OAI, alpha=1.702, limit=7.0), has_bias=True)
EVERYTHING = {"triton": "", "triton_kernels": "3.5.1 at triton_kernels", "flashinfer": "0.7.2.post1",
              "vllm_marlin": ""}


def gpu(cc, **packages):
    return Platform("cuda", cc, frozenset(packages), "fake GPU", {k: v for k, v in packages.items() if v})


H200 = gpu((9, 0), **EVERYTHING)
B200 = gpu((10, 0), **EVERYTHING)


def verdict(name, spec=GPT_OSS, platform=H200):
    return registered_backends()[name].supports(spec, platform)


@pytest.mark.parametrize("name, platform, spec, reason", [
    ("triton_kernels", Platform("cpu"), GPT_OSS, "needs a CUDA GPU of compute capability 9.x or 10.x"),
    ("triton_kernels", gpu((8, 0), **EVERYTHING), GPT_OSS, "found sm80"),
    ("triton_kernels", gpu((9, 0), triton=""), GPT_OSS, "PyPI 'triton-kernels' is unrelated"),
    ("triton_kernels", gpu((9, 0), triton="", triton_kernels="3.6 at triton_kernels"), GPT_OSS,
     "generation 3.6 at triton_kernels found; this backend drives generation(s) 3.5.1 only"),
    ("triton_kernels", gpu((9, 0), triton="", triton_kernels="3.8 at triton_kernels"), GPT_OSS, "generation 3.8"),
    ("triton_kernels", H200, dataclasses.replace(GPT_OSS, act_dtype=torch.float16), "needs bfloat16 activations"),
    ("triton_kernels", H200, dataclasses.replace(GPT_OSS, top_k=6), "power-of-two top_k"),
    ("flashinfer_cutlass", gpu((9, 0)), GPT_OSS, "needs FlashInfer"),
    ("flashinfer_cutlass", gpu((9, 0), flashinfer="0.6.10"), GPT_OSS, "needs FlashInfer >= 0.6.16 on SM90"),
    ("flashinfer_cutlass", gpu((8, 9), flashinfer="0.7.2"), GPT_OSS, "found sm89"),
    ("flashinfer_cutlass", H200, dataclasses.replace(GPT_OSS, act_dtype=torch.float16), "FP16 is incompatible"),
    ("flashinfer_trtllm", H200, GPT_OSS, "needs compute capability 10.0"),
    ("flashinfer_trtllm_mxfp8", Platform("cpu"), GPT_OSS, "needs a CUDA GPU"),
    ("marlin", gpu((9, 0), flashinfer="0.7.2"), GPT_OSS, "needs vLLM's CUDA build"),
    ("marlin", gpu((7, 0), vllm_marlin=""), GPT_OSS, "needs compute capability >= 7.5"),
    ("marlin", H200, dataclasses.replace(GPT_OSS, activation=ActivationSpec(Activation.SWIGLU_OAI, alpha=1.0,
                                                                            limit=10.0)),
     "alpha 1.702 and limit 7.0 built in"),
])
def test_supports_says_why_not(name, platform, spec, reason):
    got = verdict(name, spec, platform)
    assert got is not None and reason in got, got


@pytest.mark.parametrize("name, platform", [
    ("triton_kernels", H200), ("triton_kernels", B200), ("flashinfer_cutlass", H200), ("flashinfer_cutlass", B200),
    ("flashinfer_trtllm", B200), ("flashinfer_trtllm_mxfp8", B200), ("marlin", H200), ("marlin", gpu((8, 0), vllm_marlin="")),
])
def test_supports_where_it_can_run(name, platform):
    assert verdict(name, platform=platform) is None
    silu = dataclasses.replace(GPT_OSS, activation=ActivationSpec(Activation.SILU), has_bias=False)
    assert verdict(name, silu, platform) is None


def test_auto_skips_backends_never_verified_on_the_family():
    d = choose(GPT_OSS, B200)
    unverified = {c.backend for c in d.candidates if c.verdict == "unverified"}
    assert d.name == "reference" and unverified >= {"triton_kernels", "flashinfer_cutlass", "marlin"}
    assert all("has not been checked against 'reference' on sm100" in c.reason
               for c in d.candidates if c.verdict == "unverified")
    assert "or are unverified on this hardware" in d.reason


def test_hopper_auto_takes_ours_then_the_verified_triton_kernels():
    d = choose(GPT_OSS, H200)
    assert d.name == "triton"
    assert {c.backend: c.verdict for c in d.candidates}["triton_kernels"] == "supported"
    assert {c.backend for c in d.candidates if c.verdict == "unverified"} >= {"flashinfer_cutlass", "marlin"}


def test_explicit_request_of_an_unverified_backend_runs_and_says_so():
    d = choose(GPT_OSS, H200, "flashinfer_cutlass", request_source="MXFP4_PLUGIN_BACKEND")
    assert d.name == "flashinfer_cutlass"
    assert d.reason == "requested by MXFP4_PLUGIN_BACKEND (not yet checked against 'reference' on sm90 hardware)"
    with pytest.raises(BackendRequestError, match="'flashinfer_trtllm' .* needs compute capability 10.0"):
        choose(GPT_OSS, H200, "flashinfer_trtllm")


def test_verified_only_where_it_was_checked():
    assert registered_backends()["triton_kernels"].verified_on == frozenset({"sm90"})
    # on Blackwell it stays unverified, so trtllm's and triton_kernels' turns are skipped
    assert choose(GPT_OSS, B200).name == "reference"


def test_cpu_still_gets_reference():
    d = choose(GPT_OSS, Platform("cpu"))
    assert d.name == "reference" and all(c.verdict in ("chosen", "rejected") for c in d.candidates)


# ---- probes ----

def make_tree(root, files):
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("raise RuntimeError('probes must not import')\n")


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("fakepkg")]:
        del sys.modules[name]


def test_module_exists_imports_nothing(fake_site):
    make_tree(fake_site, ["fakepkg_a/__init__.py", "fakepkg_a/sub/__init__.py", "fakepkg_a/sub/mod.py",
                          "fakepkg_a/_ext.abi3.so"])
    assert plat.module_exists("fakepkg_a") and plat.module_exists("fakepkg_a.sub.mod")
    assert plat.module_exists("fakepkg_a.sub") and plat.module_exists("fakepkg_a._ext")
    assert not plat.module_exists("fakepkg_a.sub.nope") and not plat.module_exists("fakepkg_nope.x")
    assert "fakepkg_a" not in sys.modules


@pytest.mark.parametrize("files, expected", [
    (["matmul_ogs.py", "routing.py"], "3.5.1"),
    (["matmul_ogs.py", "tensor.py"], "3.6"),
    (["matmul.py", "tensor.py"], "3.8"),
    (["add_vectors.py", "rotary_embedding.py"], None),  # the unrelated PyPI triton-kernels
])
def test_triton_kernels_generation(fake_site, monkeypatch, files, expected):
    make_tree(fake_site, ["fakepkg_tk/__init__.py"] + [f"fakepkg_tk/{f}" for f in files])
    monkeypatch.setattr(plat, "TRITON_KERNELS_ROOTS", ("fakepkg_tk",))
    assert plat.triton_kernels_generation() == (None if expected is None else (expected, "fakepkg_tk"))


def test_namesake_falls_through_to_the_bundled_copy(fake_site, monkeypatch):
    make_tree(fake_site, ["fakepkg_ns/__init__.py", "fakepkg_ns/add_vectors.py", "fakepkg_v/__init__.py",
                          "fakepkg_v/third_party/__init__.py", "fakepkg_v/third_party/tk/__init__.py",
                          "fakepkg_v/third_party/tk/matmul_ogs.py", "fakepkg_v/third_party/tk/routing.py"])
    monkeypatch.setattr(plat, "TRITON_KERNELS_ROOTS", ("fakepkg_ns", "fakepkg_v.third_party.tk"))
    assert plat.triton_kernels_generation() == ("3.5.1", "fakepkg_v.third_party.tk")


def test_platform_describe_shows_versions():
    assert "triton_kernels (3.5.1 at triton_kernels)" in H200.describe()
    assert "flashinfer (0.7.2.post1)" in H200.describe()
    assert oracle.ORDER["sm90"][:4] == ("triton", "triton_kernels", "flashinfer_cutlass", "marlin")
