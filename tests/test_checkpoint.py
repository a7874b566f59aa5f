"""``mxfp4-plugin quantize``: bf16 gpt-oss checkpoint -> MXFP4 checkpoint, streamed."""

import json
import struct

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from mxfp4_plugin import mx
from mxfp4_plugin.checkpoint import quantize_checkpoint
from mxfp4_plugin.safetensors_stream import StreamingWriter

E, H, I = 3, 64, 96


def bf16_checkpoint(path, gen, *, shards=1, model_type="gpt_oss"):
    path.mkdir()
    config = {"model_type": model_type, "num_local_experts": E, "hidden_size": H, "intermediate_size": I,
              "num_experts_per_tok": 2, "num_hidden_layers": 2}
    (path / "config.json").write_text(json.dumps(config))
    (path / "generation_config.json").write_text("{}")
    tensors = {}
    for layer in range(2):
        p = f"model.layers.{layer}."
        tensors[p + "mlp.experts.gate_up_proj"] = (torch.randn(E, H, 2 * I, generator=gen) * 0.1).bfloat16()
        tensors[p + "mlp.experts.gate_up_proj_bias"] = torch.randn(E, 2 * I, generator=gen).bfloat16()
        tensors[p + "mlp.experts.down_proj"] = (torch.randn(E, I, H, generator=gen) * 0.1).bfloat16()
        tensors[p + "mlp.experts.down_proj_bias"] = torch.randn(E, H, generator=gen).bfloat16()
        tensors[p + "self_attn.q_proj.weight"] = torch.randn(H, H, generator=gen).bfloat16()
    tensors["model.embed_tokens.weight"] = torch.randn(32, H, generator=gen).bfloat16()
    names = sorted(tensors)
    if shards == 1:
        save_file(tensors, path / "model.safetensors")
    else:
        weight_map = {}
        for s in range(shards):
            shard = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: tensors[n] for n in names[s::shards]}
            save_file(part, path / shard)
            weight_map.update({n: shard for n in part})
        (path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return tensors


def load_all(path):
    index = path / "model.safetensors.index.json"
    files = set(json.loads(index.read_text())["weight_map"].values()) if index.exists() else {"model.safetensors"}
    out = {}
    for f in files:
        out.update(load_file(path / f))
    return out


@pytest.mark.parametrize("shards", [1, 2])
@pytest.mark.parametrize("rule", mx.SCALE_RULES)
def test_quantize_checkpoint(tmp_path, gen, shards, rule):
    src, dst = tmp_path / "bf16", tmp_path / "mxfp4"
    original = bf16_checkpoint(src, gen, shards=shards)
    quantize_checkpoint(src, dst, rule=rule, progress=False)

    config = json.loads((dst / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "mxfp4"
    assert config["quantization_config"]["scale_rule"] == rule
    assert (dst / "generation_config.json").exists()
    assert (dst / "model.safetensors.index.json").exists() == (shards > 1)

    got = load_all(dst)
    for name, tensor in original.items():
        if name.endswith(("experts.gate_up_proj", "experts.down_proj")):
            assert name not in got
            blocks, scales = got[name + "_blocks"], got[name + "_scales"]
            k, n = tensor.shape[1:]
            assert blocks.shape == (E, n, k // 32, 16) and scales.shape == (E, n, k // 32)
            # rows are outputs: the transpose of the HF [E, in, out] tensor, quantized along `in`
            expected_b, expected_s = mx.quantize(tensor.float().transpose(1, 2), rule=rule)
            assert torch.equal(blocks.flatten(-2), expected_b) and torch.equal(scales, expected_s)
            deq = mx.dequantize(blocks.flatten(-2), scales).transpose(1, 2)
            assert float((deq - tensor.float()).norm() / tensor.float().norm()) < 0.12
        else:
            assert torch.equal(got[name], tensor), name


def test_streaming_writer_matches_safetensors(tmp_path, gen):
    a = torch.randn(5, 3, generator=gen).bfloat16()
    b = torch.randint(0, 255, (4, 2, 2), dtype=torch.uint8, generator=gen)
    with StreamingWriter(tmp_path / "x.safetensors", [("a", a.dtype, tuple(a.shape)), ("b", b.dtype, tuple(b.shape))],
                         {"format": "pt"}) as w:
        w.write("a", a)
        w.write_parts("b", [b[:1], b[1:3], b[3:]])
    got = load_file(tmp_path / "x.safetensors")
    assert torch.equal(got["a"], a) and torch.equal(got["b"], b)
    with safe_open(tmp_path / "x.safetensors", framework="pt") as f:
        assert f.metadata() == {"format": "pt"}
    header_len = struct.unpack("<Q", (tmp_path / "x.safetensors").read_bytes()[:8])[0]
    assert header_len % 8 == 0


def test_streaming_writer_rejects_out_of_order_and_short(tmp_path):
    w = StreamingWriter(tmp_path / "y.safetensors", [("a", torch.uint8, (2,)), ("b", torch.uint8, (3,))])
    with pytest.raises(ValueError, match="b: expected next 'a', got 'b'"):
        w.write("b", torch.zeros(3, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"a: expected parts of torch.uint8 \[\*, \[\]\], got torch.float32"):
        w.write("a", torch.zeros(2))
    w = StreamingWriter(tmp_path / "z.safetensors", [("a", torch.uint8, (2,))])
    with pytest.raises(ValueError, match="closed with tensors never written: \\['a'\\]"):
        w.close()


def test_quantize_errors(tmp_path, gen):
    src = tmp_path / "bf16"
    bf16_checkpoint(src, gen)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ValueError, match="exists and is not empty"):
        quantize_checkpoint(src, tmp_path / "full", progress=False)
    with pytest.raises(ValueError, match="rule: expected one of"):
        quantize_checkpoint(src, tmp_path / "a", rule="floor", progress=False)

    quantize_checkpoint(src, tmp_path / "q", progress=False)
    with pytest.raises(ValueError, match="already quantized \\(quant_method 'mxfp4'\\)"):
        quantize_checkpoint(tmp_path / "q", tmp_path / "qq", progress=False)

    other = tmp_path / "llama"
    bf16_checkpoint(other, gen, model_type="llama")
    with pytest.raises(ValueError, match="model_type 'llama'; quantize reads gpt_oss"):
        quantize_checkpoint(other, tmp_path / "b", progress=False)

    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps({"model_type": "gpt_oss"}))
    save_file({"model.layers.0.mlp.experts.down_proj": torch.zeros(2, 40, 64).bfloat16()}, odd / "model.safetensors")
    with pytest.raises(ValueError, match="down_proj: reduction size 40 is not a multiple of the MXFP4 block size 32"):
        quantize_checkpoint(odd, tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="no config.json"):
        quantize_checkpoint(tmp_path / "nothing", tmp_path / "d", progress=False)
