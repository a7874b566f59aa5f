"""``mxfp4-plugin explain`` through the installed console script."""

import json
import re
from pathlib import Path
import subprocess
import sys

import pytest

GPT_OSS_20B = {"model_type": "gpt_oss", "num_local_experts": 32, "num_experts_per_tok": 4, "hidden_size": 2880,
               "intermediate_size": 2880, "swiglu_limit": 7.0}


def run(*args, env=None):
    # the console script installed beside this interpreter (the test venv's bin/)
    exe = Path(sys.executable).with_name("mxfp4-plugin")
    if not exe.exists():
        pytest.fail(f"console script not installed at {exe}")
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env)


def test_explain_sizes_table():
    r = run("explain", "--experts", "128", "--top-k", "4", "--hidden", "2880", "--intermediate", "2880",
            "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "chosen   : reference: highest-ranked backend" in r.stdout
    assert "128 experts (128 on this rank), top-4, hidden 2880, intermediate 2880 per rank" in r.stdout
    assert re.search(r"rank +backend +verdict +reason", r.stdout)
    assert re.search(r"triton +rejected +needs a CUDA GPU", r.stdout)


def test_explain_model_config_json_with_tp(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(GPT_OSS_20B))
    r = run("explain", "--model-config", str(cfg), "--tp-size", "4", "--tp-rank", "3", "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["backend"] == "reference" and out["platform"]["family"] == "cpu"
    # gpt-oss I = 2880 = 90 blocks over TP 4: each rank allocates ceil(90/4) * 32 = 736
    assert "intermediate 736 per rank" in out["layer"] and "swiglu_oai(alpha=1.702, limit=7.0)" in out["layer"]


@pytest.mark.parametrize("args, message", [
    (["--experts", "8", "--top-k", "2", "--hidden", "100", "--intermediate", "64"],
     "hidden_size: must be a multiple of the MXFP4 block size 32, got 100"),
    (["--experts", "8", "--top-k", "9", "--hidden", "64", "--intermediate", "64"], "top_k: cannot exceed num_experts"),
    (["--experts", "8", "--hidden", "64"], "missing --top-k, --intermediate"),
    (["--experts", "8", "--top-k", "2", "--hidden", "64", "--intermediate", "64", "--backend", "nope"],
     "unknown backend 'nope' (from --backend)"),
])
def test_explain_errors(args, message):
    r = run("explain", "--device", "cpu", *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr


def test_explain_env_var_request(monkeypatch):
    import os

    env = dict(os.environ, MXFP4_PLUGIN_BACKEND="reference")
    r = run("explain", "--experts", "8", "--top-k", "2", "--hidden", "64", "--intermediate", "64", "--device", "cpu",
            env=env)
    assert r.returncode == 0 and "request  : reference (from MXFP4_PLUGIN_BACKEND)" in r.stdout


def test_explain_rejects_config_and_sizes_together(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(GPT_OSS_20B))
    r = run("explain", "--model-config", str(cfg), "--experts", "4", "--device", "cpu")
    assert r.returncode == 2 and "give either a config or sizes, not both" in r.stderr


def test_model_config_of_another_family(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "llama"}))
    r = run("explain", "--model-config", str(cfg), "--device", "cpu")
    assert r.returncode == 2 and "model_type 'llama' is not supported" in r.stderr


def test_explain_says_when_tuned_rows_are_not_read(tmp_path):
    import os

    rows = tmp_path / "rows.json"
    rows.write_text('{"version": 1, "rows": []}')
    env = dict(os.environ, MXFP4_PLUGIN_MOE_CONFIGS=str(rows))
    r = run("explain", "--experts", "8", "--top-k", "2", "--hidden", "64", "--intermediate", "64", "--device", "cpu",
            env=env)
    assert r.returncode == 0, r.stderr
    assert f"configs  : MXFP4_PLUGIN_MOE_CONFIGS={rows} is not used: 'reference' runs launch configs of its own" \
        in r.stdout
