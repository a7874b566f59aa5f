"""The bench's outputs: a text table, the JSON report as is, and a plot of time against tokens."""

from __future__ import annotations

import json
from pathlib import Path

from .runner import OURS, PEER, REL_ERR_LIMIT


def _cell(result: dict | None) -> str:
    if result is None:
        return "-"
    if "error" in result:
        return "error"
    if "skipped" in result:
        return "skip"
    return f"{result['us']:.1f}"


def _err(result: dict | None) -> str:
    return f"{result['rel_err']:.1e}" if result and "rel_err" in result else "-"


def table(report: dict) -> str:
    """One block per shape: times in µs, our speedup over the peer, our share of the roofline."""
    ceil = report["ceilings"]
    lines = [f"{report['machine']['gpu']}, {report['date']}; copy {ceil['copy_bytes_per_s'] / 1e12:.2f} TB/s, "
             f"bf16 matmul {ceil['bf16_matmul_flop_per_s'] / 1e12:.0f} TFLOP/s (measured in this run)"]
    shapes = list(dict.fromkeys(p["shape"] for p in report["points"]))
    for shape in shapes:
        points = [p for p in report["points"] if p["shape"] == shape]
        names = list(dict.fromkeys(n for p in points for n in p["backends"]))
        others = [n for n in names if n not in (OURS, PEER)]
        head = (f"{'M':>6} {'experts':>7} {'roof us':>8} {OURS + ' us':>10} {PEER + ' us':>17} {'speedup':>7} "
                f"{'%roof':>6} " + " ".join(f"{n + ' us':>13}" for n in others)
                + f" {'err ' + OURS:>10} {'err ' + PEER:>10}")
        lines += ["", shape, head]
        for p in points:
            ours, peer = p["backends"].get(OURS), p["backends"].get(PEER)
            speed = (f"{peer['us'] / ours['us']:.2f}x" if ours and peer and "us" in ours and "us" in peer else "-")
            roof = f"{100 * p['roofline_us'] / ours['us']:.0f}%" if ours and "us" in ours else "-"
            lines.append(f"{p['tokens']:>6} {p['distinct_experts']:>7.1f} {p['roofline_us']:>8.1f} {_cell(ours):>10} "
                         f"{_cell(peer):>17} {speed:>7} {roof:>6} "
                         + " ".join(f"{_cell(p['backends'].get(n)):>13}" for n in others)
                         + f" {_err(ours):>10} {_err(peer):>10}")
    errors = [(p["shape"], p["tokens"], n, r["error"]) for p in report["points"] for n, r in p["backends"].items()
              if "error" in r]
    lines += [""] + [f"note: {n}" for n in report["notes"]]
    lines += [f"error: {s} M={m} {n}: {e}" for s, m, n, e in errors]
    if report["tune"]:
        timing = report["tune_timing"]
        lines += ["", f"tuning (fastest correct candidate per shape and M; each timed on {timing['routings']} routings "
                      f"and {timing['iters']} replays, so these rank candidates and are not comparable with the table "
                      f"above):"]
        for shape in shapes:
            for m in dict.fromkeys(t["tokens"] for t in report["tune"] if t["shape"] == shape):
                ok = [t for t in report["tune"] if t["shape"] == shape and t["tokens"] == m and "us" in t
                      and t["rel_err"] < REL_ERR_LIMIT]
                if ok:
                    best = min(ok, key=lambda t: t["us"])
                    lines.append(f"  {shape:>14} M={m:<5} {best['us']:9.1f} us  {best['config']}")
                    shipped = [t for t in ok if t.get("shipped")]
                    if shipped and shipped[0] is not best:
                        lines.append(f"  {'':>14} {'shipped':<7} {shipped[0]['us']:9.1f} us  {shipped[0]['config']}")
    return "\n".join(lines)


def write(report: dict, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "bench.json", out_dir / "bench.txt"]
    paths[0].write_text(json.dumps(report, indent=1))
    paths[1].write_text(table(report) + "\n")
    try:
        paths.append(plot(report, out_dir / "bench.png"))
    except ImportError as exc:
        report["notes"].append(f"no plot: {exc}")
    return paths


def plot(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys(p["shape"] for p in report["points"]))
    fig, axes = plt.subplots(1, len(shapes), figsize=(6 * len(shapes), 4.5), squeeze=False)
    for ax, shape in zip(axes[0], shapes):
        points = [p for p in report["points"] if p["shape"] == shape]
        tokens = [p["tokens"] for p in points]
        ax.plot(tokens, [p["roofline_us"] for p in points], "k--", label="roofline (measured ceilings)")
        for name in dict.fromkeys(n for p in points for n in p["backends"]):
            xs = [p["tokens"] for p in points if "us" in p["backends"].get(name, {})]
            ys = [p["backends"][name]["us"] for p in points if "us" in p["backends"].get(name, {})]
            if xs:
                ax.plot(xs, ys, "o-", label=name)
        ax.set(xscale="log", yscale="log", xlabel="tokens (M)", ylabel="µs per layer", title=shape)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"MXFP4 MoE layer, {report['machine']['gpu']}, CUDA-graph medians")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
