"""bf16 gpt-oss checkpoint (Hugging Face layout) -> MXFP4 gpt-oss checkpoint.

Only the expert weights become MXFP4, as in OpenAI's checkpoints (ENGINE_NOTES 2.2):
``...experts.gate_up_proj [E, H, 2I]`` -> ``gate_up_proj_blocks [E, 2I, H/32, 16]`` and
``gate_up_proj_scales [E, 2I, H/32]``; ``...experts.down_proj [E, I, H]`` -> ``down_proj_blocks
[E, H, I/32, 16]`` and ``down_proj_scales [E, H, I/32]``. Rows are outputs and keep the
interleaved gate/up order; biases and every other tensor are copied unchanged.

Streaming: one output shard per input shard, each written tensor by tensor and each expert
quantized on its own, so memory stays near one expert's weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from . import mx
from .safetensors_stream import DTYPE_NAMES, StreamingWriter

DTYPE_OF_NAME = {name: dtype for dtype, name in DTYPE_NAMES.items()}

QUANTIZATION_CONFIG = {
    "quant_method": "mxfp4",
    "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"],
}
# dense expert tensor suffix -> MXFP4 prefix; both are [E, K, N] in the bf16 checkpoint (x @ W)
EXPERT_TENSORS = {".mlp.experts.gate_up_proj": ".mlp.experts.gate_up_proj",
                  ".mlp.experts.down_proj": ".mlp.experts.down_proj"}
INDEX_FILE = "model.safetensors.index.json"


def _expert_kind(name: str) -> str | None:
    return next((suffix for suffix in EXPERT_TENSORS if name.endswith(suffix)), None)


def _shards(src: Path) -> list[str]:
    index = src / INDEX_FILE
    if index.exists():
        return sorted(set(json.loads(index.read_text())["weight_map"].values()))
    shards = sorted(p.name for p in src.glob("*.safetensors"))
    if not shards:
        raise ValueError(f"{src}: no *.safetensors files (and no {INDEX_FILE})")
    return shards


def _check_source(src: Path) -> dict:
    config_path = src / "config.json"
    if not config_path.exists():
        raise ValueError(f"{src}: no config.json; expected a Hugging Face checkpoint directory")
    config = json.loads(config_path.read_text())
    if config.get("model_type") != "gpt_oss":
        raise ValueError(f"{config_path}: model_type {config.get('model_type')!r}; quantize reads gpt_oss checkpoints")
    if "quantization_config" in config:
        raise ValueError(f"{config_path}: already quantized "
                         f"(quant_method {config['quantization_config'].get('quant_method')!r}); expected a bf16 checkpoint")
    return config


def _plan(name: str, dtype: torch.dtype, shape: tuple[int, ...]) -> list[tuple[str, torch.dtype, tuple[int, ...]]]:
    """What one input tensor becomes: the same tensor, or MXFP4 blocks and scales."""
    if _expert_kind(name) is None:
        return [(name, dtype, shape)]
    if len(shape) != 3 or not dtype.is_floating_point:
        raise ValueError(f"{name}: expected a floating-point [experts, in, out] tensor, got {dtype} {list(shape)}")
    experts, k, n = shape
    if k % mx.BLOCK_SIZE:
        raise ValueError(f"{name}: reduction size {k} is not a multiple of the MXFP4 block size {mx.BLOCK_SIZE}")
    return [(name + "_blocks", torch.uint8, (experts, n, k // mx.BLOCK_SIZE, mx.BLOCK_SIZE // 2)),
            (name + "_scales", torch.uint8, (experts, n, k // mx.BLOCK_SIZE))]


def _write_experts(out: StreamingWriter, f, name: str, num_experts: int, rule: str) -> None:
    """Quantize one expert at a time (read as a slice): blocks are written as they come,
    scales (1/16 of the blocks' bytes) are kept until the blocks are done."""
    scales = []

    def blocks():
        for e in range(num_experts):
            expert = f.get_slice(name)[e]  # [K, N]; rows of the MXFP4 tensor are outputs: [N, K]
            b, s = mx.quantize(expert.T.float(), rule=rule)
            scales.append(s)
            yield b.view(1, b.shape[0], -1, mx.BLOCK_SIZE // 2)

    out.write_parts(name + "_blocks", blocks())
    out.write(name + "_scales", torch.stack(scales))


def _dtype_of(sl) -> torch.dtype:
    return DTYPE_OF_NAME[sl.get_dtype()]


def quantize_checkpoint(src: str | Path, dst: str | Path, *, rule: str = "round_up", progress: bool = True) -> Path:
    from safetensors import safe_open
    from tqdm import tqdm

    src, dst = Path(src), Path(dst)
    if rule not in mx.SCALE_RULES:
        raise ValueError(f"rule: expected one of {mx.SCALE_RULES}, got {rule!r}")
    config = _check_source(src)
    if dst.exists() and any(dst.iterdir()):
        raise ValueError(f"{dst}: exists and is not empty; choose a new destination")
    dst.mkdir(parents=True, exist_ok=True)

    weight_map: dict[str, str] = {}
    shards = _shards(src)
    with tqdm(desc="quantize", unit="tensor", disable=not progress) as bar:
        for shard in shards:
            with safe_open(src / shard, framework="pt") as f:
                names = list(f.keys())
                plan = []
                for name in names:
                    sl = f.get_slice(name)
                    plan.append((name, _plan(name, _dtype_of(sl), tuple(sl.get_shape()))))
                bar.total = (bar.total or 0) + len(names)
                entries = [entry for _, outs in plan for entry in outs]
                with StreamingWriter(dst / shard, entries, {"format": "pt"}) as out:
                    for name, outs in plan:
                        if len(outs) == 1:
                            out.write(name, f.get_tensor(name))
                        else:
                            _write_experts(out, f, name, outs[0][2][0], rule)
                        weight_map.update({o[0]: shard for o in outs})
                        bar.update(1)

    if len(shards) > 1 or (src / INDEX_FILE).exists():
        (dst / INDEX_FILE).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}, indent=2))
    for extra in src.iterdir():
        if extra.is_file() and extra.suffix != ".safetensors" and extra.name not in ("config.json", INDEX_FILE):
            shutil.copy2(extra, dst / extra.name)
    config["quantization_config"] = dict(QUANTIZATION_CONFIG, scale_rule=rule)
    (dst / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return dst


def dequantize_checkpoint(src: str | Path, dst: str | Path, *, dtype: torch.dtype = torch.bfloat16) -> Path:
    """The inverse layout change: an MXFP4 gpt-oss checkpoint -> a dense one holding exactly the
    MXFP4 values (exact in bf16), for engines and references that read dense weights."""
    from safetensors import safe_open

    src, dst = Path(src), Path(dst)
    config = json.loads((src / "config.json").read_text())
    if config.get("quantization_config", {}).get("quant_method") != "mxfp4":
        raise ValueError(f"{src / 'config.json'}: expected quantization_config.quant_method 'mxfp4'")
    if dst.exists() and any(dst.iterdir()):
        raise ValueError(f"{dst}: exists and is not empty; choose a new destination")
    dst.mkdir(parents=True, exist_ok=True)
    for shard in _shards(src):
        with safe_open(src / shard, framework="pt") as f:
            names = list(f.keys())
            entries, dense = [], {}
            for name in names:
                sl = f.get_slice(name)
                shape = tuple(sl.get_shape())
                if name.endswith("_blocks") and _expert_kind(name.removesuffix("_blocks")):
                    if name.removesuffix("_blocks") + "_scales" not in names:
                        raise ValueError(f"{name}: its _scales tensor is not in the same file ({shard})")
                    experts, n, k_blocks, _ = shape
                    dense[name] = name.removesuffix("_blocks")
                    entries.append((dense[name], dtype, (experts, k_blocks * mx.BLOCK_SIZE, n)))
                elif not (name.endswith("_scales") and _expert_kind(name.removesuffix("_scales"))):
                    entries.append((name, _dtype_of(sl), shape))
            with StreamingWriter(dst / shard, entries, {"format": "pt"}) as out:
                for name in names:
                    if name in dense:
                        scales_name = dense[name] + "_scales"
                        out.write_parts(dense[name], (
                            mx.dequantize(f.get_slice(name)[e].flatten(-2), f.get_slice(scales_name)[e], dtype).T[None]
                            for e in range(f.get_slice(name).get_shape()[0])))
                    elif not (name.endswith("_scales") and _expert_kind(name.removesuffix("_scales"))):
                        out.write(name, f.get_tensor(name))
    for extra in src.iterdir():
        if extra.is_file() and extra.suffix != ".safetensors" and extra.name != "config.json":
            shutil.copy2(extra, dst / extra.name)
    del config["quantization_config"]
    (dst / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return dst
