"""The vLLM adapter without starting an engine: registration, the override rule, the tables,
the loader's checks."""

import pytest
import torch

from mxfp4_plugin.adapters.vllm import flags
from mxfp4_plugin.adapters.vllm.loading import LOADED, PARTIAL_DIM, copy_leading, wrap_weight_loader
from mxfp4_plugin.oracle import BackendRequestError


@pytest.fixture(scope="module")
def config_cls():
    from mxfp4_plugin.adapters.vllm import register

    register()
    register()  # idempotent: vLLM may call it again in the same process
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS, get_quantization_config

    from mxfp4_plugin.adapters.vllm.config import PluginMxfp4Config

    assert QUANTIZATION_METHODS.count("mxfp4-plugin") == 1
    assert get_quantization_config("mxfp4-plugin") is PluginMxfp4Config
    return PluginMxfp4Config


def test_entry_point_is_installed():
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group="vllm.general_plugins")}
    assert eps.get("mxfp4_plugin") == "mxfp4_plugin.adapters.vllm:register"


@pytest.mark.parametrize("cfg, user, expected", [
    ({"quant_method": "mxfp4"}, "mxfp4-plugin", "mxfp4-plugin"),
    ({"quant_method": "gpt_oss_mxfp4"}, "mxfp4-plugin", "mxfp4-plugin"),
    ({"quant_method": "mxfp4"}, None, None),  # without the flag vLLM's own method stays in charge
    ({"quant_method": "mxfp4"}, "mxfp4", None),
    ({"quant_method": "fp8"}, "mxfp4-plugin", None),  # not ours: vLLM reports the mismatch
])
def test_override_claims_mxfp4_only_when_asked(config_cls, cfg, user, expected):
    assert config_cls.override_quantization_method(cfg, user, None) == expected
    assert config_cls.override_quantization_method(cfg, user) == expected  # two-argument form too


def test_from_config(config_cls):
    assert config_cls.from_config({"quant_method": "gpt_oss_mxfp4"}).checkpoint_method == "gpt_oss_mxfp4"
    with pytest.raises(ValueError, match="quant_method 'fp8'; expected one of \\['mxfp4', 'gpt_oss_mxfp4'\\]"):
        config_cls.from_config({"quant_method": "fp8"})
    assert config_cls.get_name() == "mxfp4-plugin" and config_cls.get_config_filenames() == []


def test_not_mxfp4_checkpoint_is_refused_before_loading(config_cls):
    with pytest.raises(ValueError, match="some/model has no MXFP4 quantization_config"):
        config_cls().maybe_update_config("some/model")


@pytest.mark.parametrize("value, expected", [("auto", "auto"), (None, "auto"), ("triton", "triton_kernels"),
                                             ("flashinfer-cutlass", "flashinfer_cutlass"), ("marlin", "marlin"),
                                             ("emulation", "reference")])
def test_moe_backend_table(value, expected):
    assert flags.plugin_backend_for(value) == expected


def test_moe_backend_without_counterpart():
    with pytest.raises(BackendRequestError, match="--moe-backend 'deep_gemm' has no mxfp4-plugin counterpart; "
                                                  "with --quantization mxfp4-plugin use one of"):
        flags.plugin_backend_for("deep_gemm")


def test_copy_leading_fills_the_tp_tail_and_checks():
    param = torch.zeros(2, 6, 4, dtype=torch.uint8)
    loaded = torch.arange(2 * 4 * 4, dtype=torch.uint8).view(2, 4, 4)
    copy_leading(param, loaded, "w13_weight", partial_dim=1)
    assert torch.equal(param[:, :4], loaded) and int(param[:, 4:].count_nonzero()) == 0
    with pytest.raises(ValueError, match=r"w13_weight: checkpoint tensor torch.uint8 \[2, 4, 3\] does not fit this "
                                         r"rank's parameter: expected torch.uint8 \[2, 6, 4\], dimension 1 at most"):
        copy_leading(param, loaded[:, :, :3], "w13_weight", partial_dim=1)
    with pytest.raises(ValueError, match=r"got|does not fit"):
        copy_leading(param, torch.zeros(2, 7, 4, dtype=torch.uint8), "w13_weight", partial_dim=1)
    with pytest.raises(ValueError, match="checkpoint tensor torch.bfloat16"):
        copy_leading(param, loaded.bfloat16(), "w13_weight", partial_dim=1)
    with pytest.raises(ValueError, match=r"expected torch.uint8 \[2, 6, 4\]$"):
        copy_leading(param, loaded, "w2_bias", partial_dim=None)


def test_wrapped_loader_marks_and_delegates():
    calls = []

    def original(param, loaded_weight, weight_name, shard_id, expert_id, return_success=False):
        calls.append((shard_id, expert_id))
        return True

    loader = wrap_weight_loader(original)
    assert loader.supports_moe_loading
    param = torch.nn.Parameter(torch.zeros(2, 4, dtype=torch.uint8), requires_grad=False)
    setattr(param, PARTIAL_DIM, 1)
    assert loader(param, torch.ones(2, 2, dtype=torch.uint8), weight_name="x", shard_id=None, expert_id=None,
                  return_success=True) is True
    assert getattr(param, LOADED) and calls == []
    other = torch.nn.Parameter(torch.zeros(1), requires_grad=False)
    assert loader(other, torch.ones(1), weight_name="y", shard_id="gpt_oss_w13", expert_id=3) is None
    assert calls == [("gpt_oss_w13", 3)] and getattr(other, LOADED)


@pytest.mark.parametrize("cpu, amx, granted, expected", [
    (True, True, True, True),
    (True, True, False, False),  # the request refused: a warning, no tiles
    (True, False, True, False),  # no AMX: nothing asked
    (False, True, True, False),  # not vLLM's CPU platform: nothing asked
])
def test_amx_tiles_are_requested_on_vllms_cpu_platform_only(monkeypatch, cpu, amx, granted, expected):
    from vllm.platforms import current_platform

    from mxfp4_plugin.adapters.vllm.cpu_amx import allow_amx_tiles

    asked = []
    monkeypatch.setattr(type(current_platform), "is_cpu", lambda self: cpu)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch._C._cpu, "_init_amx", lambda: asked.append(True) or granted)
    assert allow_amx_tiles() is expected
    assert asked == ([True] if cpu and amx else [])
