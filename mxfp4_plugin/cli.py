"""``mxfp4-plugin``: the command line.

``explain``: which backend the oracle picks here for a layer, and why, with every
candidate it turned down. ``bench``: the backends side by side against the roofline (GPU).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence

import torch

from . import mx
from .models import gpt_oss_activation, spec_for_rank, spec_from_hf_config
from .oracle import AUTO, BackendRequestError, Decision, choose, resolve_request
from .platform import detect
from .spec import Activation, ActivationSpec, GateUpOrder, MoESpec, ParallelLayout

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def _add_layer_args(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("the layer: a model's config.json, or sizes")
    src.add_argument("--model-config", metavar="PATH", help="a Hugging Face config.json (gpt_oss)")
    src.add_argument("--experts", type=int, help="number of experts (global)")
    src.add_argument("--top-k", type=int, help="experts per token")
    src.add_argument("--hidden", type=int, help="hidden size")
    src.add_argument("--intermediate", type=int, help="intermediate size (whole, before TP)")
    src.add_argument("--activation", choices=[a.value for a in Activation], default=Activation.SWIGLU_OAI.value,
                     help="gated activation (swiglu_oai uses gpt-oss's alpha and limit)")
    src.add_argument("--gate-up-order", choices=[o.value for o in GateUpOrder], default=GateUpOrder.INTERLEAVED.value)
    src.add_argument("--no-bias", action="store_true", help="the experts have no biases")
    src.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16", help="activation dtype")
    par = p.add_argument_group("parallel layout of this rank")
    par.add_argument("--tp-size", type=int, default=1)
    par.add_argument("--tp-rank", type=int, default=0)
    par.add_argument("--ep-size", type=int, default=1)
    par.add_argument("--ep-rank", type=int, default=0)


def spec_from_args(args: argparse.Namespace) -> MoESpec:
    parallel = ParallelLayout(args.tp_rank, args.tp_size, args.ep_rank, args.ep_size)
    dtype = DTYPES[args.dtype]
    sizes = {"--experts": args.experts, "--top-k": args.top_k, "--hidden": args.hidden,
             "--intermediate": args.intermediate}
    if args.model_config:
        given = [k for k, v in sizes.items() if v is not None]
        if given:
            raise ValueError(f"--model-config: give either a config or sizes, not both (also got {', '.join(given)})")
        with open(args.model_config) as f:
            return spec_from_hf_config(json.load(f), parallel=parallel, act_dtype=dtype)
    missing = [k for k, v in sizes.items() if v is None]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}: give all four sizes, or --model-config")
    activation = (gpt_oss_activation({}) if args.activation == Activation.SWIGLU_OAI.value
                  else ActivationSpec(Activation(args.activation)))
    return spec_for_rank(num_experts=args.experts, top_k=args.top_k, hidden_size=args.hidden,
                         intermediate_size=args.intermediate, activation=activation,
                         gate_up_order=GateUpOrder(args.gate_up_order), has_bias=not args.no_bias,
                         act_dtype=dtype, parallel=parallel)


def describe_spec(spec: MoESpec) -> str:
    act = spec.activation
    activation = act.kind.value + (f"(alpha={act.alpha}, limit={act.limit})" if act.alpha is not None else "")
    par = spec.parallel
    return (f"{spec.num_experts} experts ({spec.num_local_experts} on this rank), top-{spec.top_k}, "
            f"hidden {spec.hidden_size}, intermediate {spec.intermediate_size} per rank, {activation}, "
            f"{'bias' if spec.has_bias else 'no bias'}, {spec.gate_up_order.value} gate/up, "
            f"{str(spec.act_dtype).removeprefix('torch.')}, TP {par.tp_rank}/{par.tp_size}, EP {par.ep_rank}/{par.ep_size}")


def format_decision(decision: Decision, spec: MoESpec) -> str:
    rows = [("rank", "backend", "verdict", "reason")]
    rows += [(str(i), c.backend, c.verdict, c.reason) for i, c in enumerate(decision.candidates, 1)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    table = ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths)) + "  " + r[3] for r in rows]
    return "\n".join([
        f"platform : {decision.platform.describe()}",
        f"layer    : {describe_spec(spec)}",
        f"request  : {decision.request} (from {decision.request_source})",
        f"chosen   : {decision.name}: {decision.reason}",
        *([f"configs  : {decision.config_note}"] if decision.config_note else []),
        "candidates:",
        *table,
    ])


def cmd_explain(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    request, source = resolve_request(args.backend, "--backend")
    decision = choose(spec, detect(args.device), request, request_source=source)
    if args.json:
        print(json.dumps({"layer": describe_spec(spec), **decision.to_dict()}, indent=2))
    else:
        print(format_decision(decision, spec))
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from .checkpoint import quantize_checkpoint

    out = quantize_checkpoint(args.src, args.dst, rule=args.rule, progress=not args.quiet)
    print(f"wrote MXFP4 checkpoint to {out} (scale rule {args.rule})")
    return 0


def cmd_make_tiny(args: argparse.Namespace) -> int:
    from .tiny_model import make_tiny_gpt_oss

    bf16_dir, mxfp4_dir, dequantized_dir = make_tiny_gpt_oss(args.dst, seed=args.seed, init_std=args.init_std,
                                                             progress=not args.quiet)
    print(f"wrote tiny gpt-oss: bf16 at {bf16_dir}, MXFP4 at {mxfp4_dir}, MXFP4 values as bf16 at {dequantized_dir}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .bench import report
    from .bench.runner import BenchOptions, run_bench
    from .bench.shapes import SHAPES

    if args.tune_only is not None:
        if not args.tune:
            raise ValueError("--tune-only: narrows --tune's candidates, but --tune was not given")
        try:
            re.compile(args.tune_only)
        except re.error as exc:
            raise ValueError(f"--tune-only: expected a regular expression, got {args.tune_only!r} ({exc})") from None
    if args.save_rows is not None and not args.tune:
        raise ValueError("--save-rows: saves --tune's winners, but --tune was not given")
    if not torch.cuda.is_available():
        raise ValueError("bench: needs a CUDA GPU (the backends are timed with CUDA graphs); none is visible here")
    shapes = args.shapes.split(",")
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        raise ValueError(f"--shapes: unknown {unknown}; expected some of {sorted(SHAPES)}")
    tokens = [int(t) for t in args.tokens.split(",")]
    if any(t < 1 for t in tokens):
        raise ValueError(f"--tokens: expected positive integers, got {tokens}")
    options = BenchOptions(shapes=shapes, tokens=tokens, reference_max_tokens=args.reference_max_tokens,
                           rotations=args.rotations, iters=args.iters, tune=args.tune, tune_only=args.tune_only, seed=args.seed,
                           progress=not args.quiet)
    result = run_bench(options)
    result["command"] = "mxfp4-plugin " + " ".join(sys.argv[1:])
    paths = report.write(result, Path(args.out))
    print(report.table(result))
    if args.save_rows is not None:
        from .bench.save_rows import winners
        from .kernels.moe_details import tuned_rows

        rows, lines = winners(result["tune"])
        tuned_rows.dump(rows, args.save_rows)
        print("\n".join(["", f"tuned rows ({len(rows)}) for {tuned_rows.ENV_VAR}:"] + [f"  {line}" for line in lines]))
        paths.append(Path(args.save_rows))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mxfp4-plugin", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    explain = sub.add_parser("explain", help="which backend runs a layer here, and why")
    _add_layer_args(explain)
    explain.add_argument("--backend", default=AUTO, help="request a backend by name (default: auto)")
    explain.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda if available)")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(func=cmd_explain)

    quantize = sub.add_parser("quantize", help="a bf16 gpt-oss checkpoint (Hugging Face layout) into MXFP4")
    quantize.add_argument("src", help="directory with config.json and *.safetensors (bf16)")
    quantize.add_argument("dst", help="new directory for the MXFP4 checkpoint")
    quantize.add_argument("--rule", choices=mx.SCALE_RULES, default="round_up",
                          help="how each block's scale is chosen (default: round_up, which never clips)")
    quantize.add_argument("--quiet", action="store_true", help="no progress bar")
    quantize.set_defaults(func=cmd_quantize)

    tiny = sub.add_parser("make-tiny", help="a tiny random gpt-oss (bf16 and MXFP4) for trying the plugin; "
                                            "needs transformers")
    tiny.add_argument("dst", help="new directory; bf16/ and mxfp4/ are written inside")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument("--init-std", type=float, default=0.02, help="trunk weight init scale")
    tiny.add_argument("--quiet", action="store_true", help="no progress bar")
    tiny.set_defaults(func=cmd_make_tiny)

    bench = sub.add_parser("bench", help="time every backend that runs here against the roofline (CUDA GPU)")
    bench.add_argument("--shapes", default="gpt-oss-120b,gpt-oss-20b,deepseek-like",
                       help="comma-separated: gpt-oss-120b, gpt-oss-20b, deepseek-like")
    bench.add_argument("--tokens", default="1,4,16,64,256,1024,4096,8192", help="comma-separated token counts")
    bench.add_argument("--reference-max-tokens", type=int, default=16,
                       help="time the (slow) reference backend only up to this many tokens; it checks every point")
    bench.add_argument("--rotations", type=int, default=4, help="input sets per timed graph (defeats the L2 cache)")
    bench.add_argument("--iters", type=int, default=20, help="graph replays per median")
    bench.add_argument("--tune", action="store_true", help="also time every candidate launch config of ours")
    bench.add_argument("--tune-only", default=None, metavar="REGEX",
                       help="with --tune: only the candidates whose description (as the tuning table prints it) "
                            "matches this regular expression")
    bench.add_argument("--save-rows", default=None, metavar="FILE",
                       help="with --tune: write the candidates at least 3%% faster than the current row as tuned "
                            "rows (JSON) for MXFP4_PLUGIN_MOE_CONFIGS=FILE")
    bench.add_argument("--seed", type=int, default=0,
                       help="seeds each layer's weights and each (layer, tokens) point's inputs and routings")
    bench.add_argument("--out", default="bench-out", help="directory for bench.json, bench.txt, bench.png")
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, BackendRequestError, OSError) as exc:
        print(f"mxfp4-plugin {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
