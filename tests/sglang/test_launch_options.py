"""`--quantization mxfp4-plugin` and the `--moe-runner-backend` values, through SGLang's own parsing."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from mxfp4_plugin.adapters.sglang.flags import PLUGIN_RUNNER_BACKENDS, QUANTIZATION_NAME, known_values


def test_entry_point_is_installed():
    eps = importlib.metadata.entry_points(group="sglang.srt.plugins")
    ours = [ep for ep in eps if ep.name == "mxfp4_plugin"]
    assert [ep.value for ep in ours] == ["mxfp4_plugin.adapters.sglang:register"]


def test_load_plugins_registers_everything_once(sglang_plugins):
    from sglang.srt.arg_groups.choices import MOE_RUNNER_BACKEND_CHOICES, QUANTIZATION_CHOICES
    from sglang.srt.layers.moe.utils import RegisteredMoeRunnerBackend, resolve_moe_runner_backend
    from sglang.srt.layers.quantization import CPU_QUANTIZATION_METHODS, QUANTIZATION_METHODS, get_quantization_config

    from mxfp4_plugin.adapters.sglang import register
    from mxfp4_plugin.adapters.sglang.config import PluginMxfp4Config

    register()  # a second call (SGLang may load plugins again) changes nothing
    assert QUANTIZATION_METHODS[QUANTIZATION_NAME] is PluginMxfp4Config
    assert CPU_QUANTIZATION_METHODS[QUANTIZATION_NAME] is PluginMxfp4Config
    assert get_quantization_config(QUANTIZATION_NAME) is PluginMxfp4Config
    assert PluginMxfp4Config.get_name() == "mxfp4"  # keeps SGLang's gpt-oss MXFP4 loading path
    assert QUANTIZATION_CHOICES.count(QUANTIZATION_NAME) == 1
    for name in PLUGIN_RUNNER_BACKENDS:
        assert MOE_RUNNER_BACKEND_CHOICES.count(name) == 1
        assert resolve_moe_runner_backend(name) == RegisteredMoeRunnerBackend(name)


def test_launch_server_help_lists_the_plugin(tmp_path):
    # outside the checkout, so that the installed package is what SGLang's plugin loader imports
    out = subprocess.run([sys.executable, "-m", "sglang.launch_server", "--help"], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert QUANTIZATION_NAME in out.stdout
    for name in PLUGIN_RUNNER_BACKENDS:
        assert name in out.stdout


@pytest.mark.parametrize("value", known_values())
def test_prepare_server_args_accepts(sglang_plugins, value):
    from sglang.srt.server_args import prepare_server_args

    sa = prepare_server_args(["--model-path", "dummy", "--device", "cpu", "--quantization", QUANTIZATION_NAME,
                              "--moe-runner-backend", value])
    assert (sa.quantization, sa.moe_runner_backend) == (QUANTIZATION_NAME, value)


def test_unknown_runner_backend_is_rejected_by_sglang(sglang_plugins, capsys):
    from sglang.srt.server_args import prepare_server_args

    with pytest.raises(SystemExit):
        prepare_server_args(["--model-path", "dummy", "--device", "cpu", "--quantization", QUANTIZATION_NAME,
                             "--moe-runner-backend", "no_such_backend"])
    err = capsys.readouterr().err
    assert "--moe-runner-backend" in err and "no_such_backend" in err
