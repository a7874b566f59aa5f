"""SGLang's model config resolution on the tiny gpt-oss MXFP4 checkpoint picks the plugin's config."""

from __future__ import annotations

import pytest

from mxfp4_plugin.adapters.sglang.flags import QUANTIZATION_NAME


def test_model_config_picks_the_plugin(sglang_plugins, tiny_checkpoint):
    from sglang.srt.configs.model_config import ModelConfig
    from sglang.srt.layers.quantization import get_quantization_config

    from mxfp4_plugin.adapters.sglang.config import PluginMxfp4Config

    mc = ModelConfig(model_path=str(tiny_checkpoint), quantization=QUANTIZATION_NAME)
    assert mc.quantization == QUANTIZATION_NAME
    assert mc.hf_config.model_type == "gpt_oss"
    cls = get_quantization_config(mc.quantization)
    assert cls is PluginMxfp4Config
    cfg = cls.from_config(mc._parse_quant_hf_config())
    assert cfg.get_name() == "mxfp4" and cfg.is_static_cfg()


def test_override_claims_mxfp4_only_when_asked():
    from mxfp4_plugin.adapters.sglang.config import PluginMxfp4Config

    mxfp4 = {"quant_method": "mxfp4"}
    assert PluginMxfp4Config.override_quantization_method(mxfp4, QUANTIZATION_NAME) == QUANTIZATION_NAME
    assert PluginMxfp4Config.override_quantization_method(mxfp4, "mxfp4") is None
    assert PluginMxfp4Config.override_quantization_method(mxfp4, None) is None
    assert PluginMxfp4Config.override_quantization_method({"quant_method": "fp8"}, QUANTIZATION_NAME) is None
    assert PluginMxfp4Config.override_quantization_method(None, QUANTIZATION_NAME) is None


def test_non_mxfp4_checkpoint_is_an_error(sglang_plugins):
    from mxfp4_plugin.adapters.sglang.config import PluginMxfp4Config

    with pytest.raises(ValueError, match=r"quant_method 'fp8'.*mxfp4"):
        PluginMxfp4Config.from_config({"quant_method": "fp8"})
