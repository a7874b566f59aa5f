"""The oracle, table-driven over fake platforms and fake backends registered through the hook."""

import dataclasses

import pluggy
import pytest
import torch

from mxfp4_plugin import oracle
from mxfp4_plugin.backends.base import Backend
from mxfp4_plugin.hookspecs import hookimpl
from mxfp4_plugin.oracle import BackendRequestError, choose, resolve_request
from mxfp4_plugin.platform import Platform
from mxfp4_plugin.plugins import collect_backends, make_plugin_manager, registered_backends
from mxfp4_plugin.spec import Activation, ActivationSpec, MoESpec

SPEC = MoESpec(num_experts=8, top_k=2, hidden_size=64, intermediate_size=64,
               activation=ActivationSpec(Activation.SWIGLU_OAI, alpha=1.702, limit=7.0), has_bias=True)


def fake(name, *, min_cc=None, max_cc=None, needs=None, silu_only=False):
    """A backend class with supports rules like the real ones; it never runs."""
    def supports(cls, spec, platform):
        if platform.capability is None:
            return "needs a CUDA GPU"
        if min_cc and platform.capability < min_cc:
            return f"needs compute capability >= {min_cc[0]}.{min_cc[1]}, found {platform.capability[0]}.{platform.capability[1]}"
        if max_cc and platform.capability > max_cc:
            return f"needs compute capability <= {max_cc[0]}.{max_cc[1]}"
        if needs and needs not in platform.packages:
            return f"needs the {needs} package, not installed"
        if silu_only and spec.activation.kind is not Activation.SILU:
            return "supports silu only"
        return None

    return type(f"Fake_{name}", (Backend,), {
        "name": name, "summary": "fake", "supports": classmethod(supports),
        "prepare": lambda self, w: None, "forward": lambda self, x, tw, ti: x})


class FakeProvider:
    @hookimpl
    def mxfp4_plugin_backends(self):
        return [fake("fast90", min_cc=(9, 0), max_cc=(9, 0)), fake("tk", min_cc=(9, 0), needs="triton_kernels"),
                fake("bw", min_cc=(10, 0), needs="flashinfer"), fake("silu_kernel", min_cc=(8, 0), silu_only=True)]


@pytest.fixture
def backends(monkeypatch):
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(FakeProvider(), name="fake")
    reg = collect_backends(pm)
    monkeypatch.setitem(oracle.ORDER, "sm90", ("fast90", "tk", "reference"))
    monkeypatch.setitem(oracle.ORDER, "sm100", ("bw", "tk", "reference"))
    return reg


def cuda(cc, *packages):
    return Platform("cuda", cc, frozenset(packages), "fake GPU")


@pytest.mark.parametrize("platform, expected, rejected", [
    (Platform("cpu"), "reference", {"fast90": "needs a CUDA GPU", "bw": "needs a CUDA GPU"}),
    (cuda((8, 0)), "reference", {"silu_kernel": "supports silu only"}),
    (cuda((9, 0)), "fast90", {"bw": "needs compute capability >= 10.0"}),
    (cuda((9, 0), "triton_kernels"), "fast90", {}),
    (cuda((10, 0)), "reference", {"bw": "needs the flashinfer package", "tk": "needs the triton_kernels package",
                                  "fast90": "needs compute capability <= 9.0"}),
    (cuda((10, 0), "triton_kernels"), "tk", {"bw": "needs the flashinfer package"}),
    (cuda((10, 0), "flashinfer", "triton_kernels"), "bw", {}),
])
def test_auto_follows_the_table(backends, platform, expected, rejected):
    d = choose(SPEC, platform, backends=backends)
    assert d.name == expected
    assert "highest-ranked backend" in d.reason and platform.family in d.reason
    verdicts = {c.backend: c for c in d.candidates}
    assert verdicts[expected].verdict == "chosen"
    for name, why in rejected.items():
        assert verdicts[name].verdict == "rejected" and why in verdicts[name].reason
    # every registered backend is accounted for, none silently dropped
    assert set(verdicts) == set(backends)


def test_backends_outside_the_table_come_after_it(backends):
    order = oracle.order_for(cuda((9, 0)), backends)
    assert order[:3] == ("fast90", "tk", "reference") and set(order[3:]) == set(backends) - set(order[:3])
    assert list(order[3:]) == sorted(order[3:])


def test_unknown_family_uses_the_generic_cuda_row(backends):
    assert oracle.order_for(cuda((12, 0)), backends)[0] == oracle.ORDER["cuda"][0]


def test_explicit_request_is_honoured(backends):
    d = choose(SPEC, cuda((9, 0)), "reference", request_source="MXFP4_PLUGIN_BACKEND", backends=backends)
    assert d.name == "reference" and d.reason == "requested by MXFP4_PLUGIN_BACKEND"
    assert {c.backend: c.verdict for c in d.candidates}["fast90"] == "supported"


def test_impossible_request_names_reason_and_alternatives(backends):
    with pytest.raises(BackendRequestError) as err:
        choose(SPEC, cuda((9, 0)), "bw", request_source="--backend", backends=backends)
    msg = str(err.value)
    assert "backend 'bw' (from --backend) cannot run this layer here: needs compute capability >= 10.0" in msg
    assert "Backends that would run: ['fast90', 'reference']" in msg


def test_unknown_request_lists_registered(backends):
    with pytest.raises(BackendRequestError, match=r"unknown backend 'nope' \(from argument\): registered backends are "
                                                  r"\['bw', 'fast90', .*'reference', 'silu_kernel', 'tk', .*\]"):
        choose(SPEC, cuda((9, 0)), "nope", backends=backends)


def test_no_backend_at_all():
    with pytest.raises(BackendRequestError, match="no backend can run this layer here: reference: not registered"):
        choose(SPEC, Platform("cpu"), backends={})


BUILTIN = {"reference", "triton", "triton_kernels", "flashinfer_cutlass", "flashinfer_trtllm", "flashinfer_trtllm_mxfp8",
           "marlin"}


def test_builtin_registry_has_exactly_the_real_backends():
    assert set(registered_backends()) == BUILTIN
    assert registered_backends()["reference"].supports(SPEC, Platform("cpu")) is None


def test_order_table_names_only_registered_backends():
    for family, row in oracle.ORDER.items():
        assert set(row) <= BUILTIN, family
        assert row[-1] == "reference", family


def test_duplicate_backend_names_are_an_error():
    class Twice:
        @hookimpl
        def mxfp4_plugin_backends(self):
            return [fake("reference")]

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(Twice())
    with pytest.raises(ValueError, match="backend name 'reference' is provided twice"):
        collect_backends(pm)


def test_hook_must_return_backend_classes():
    class Bad:
        @hookimpl
        def mxfp4_plugin_backends(self):
            return [object]

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(Bad())
    with pytest.raises(TypeError, match="expected Backend subclasses"):
        collect_backends(pm)


@pytest.mark.parametrize("flag, env, expected", [
    (None, {}, ("auto", "default")),
    ("auto", {"MXFP4_PLUGIN_BACKEND": "reference"}, ("reference", "MXFP4_PLUGIN_BACKEND")),
    ("triton", {}, ("triton", "--moe-backend")),
    ("triton", {"MXFP4_PLUGIN_BACKEND": "triton"}, ("triton", "MXFP4_PLUGIN_BACKEND")),
    ("auto", {"MXFP4_PLUGIN_BACKEND": "auto"}, ("auto", "default")),
])
def test_resolve_request(flag, env, expected):
    assert resolve_request(flag, "--moe-backend", env=env) == expected


def test_conflicting_requests_are_an_error():
    with pytest.raises(BackendRequestError, match="MXFP4_PLUGIN_BACKEND='reference' conflicts with --moe-backend 'marlin'"):
        resolve_request("marlin", "--moe-backend", env={"MXFP4_PLUGIN_BACKEND": "reference"})


def test_decision_summary_and_json(backends):
    d = choose(SPEC, cuda((9, 0)), backends=backends)
    assert d.summary().startswith("mxfp4-plugin: backend 'fast90' on sm90: highest-ranked")
    as_dict = d.to_dict()
    assert as_dict["backend"] == "fast90" and as_dict["platform"]["family"] == "sm90"
    assert {c["backend"] for c in as_dict["candidates"]} == set(backends)


def test_platform_validation():
    with pytest.raises(ValueError, match="device: expected 'cpu' or 'cuda', got 'tpu'"):
        Platform("tpu")
    with pytest.raises(ValueError, match="capability: expected one for cuda"):
        Platform("cuda")
    assert cuda((9, 0)).family == "sm90" and cuda((10, 0)).family == "sm100"
