"""``bench --tune --save-rows FILE``: the tune's winners as tuned rows (``kernels/moe_details/tuned_rows.py``).

A candidate becomes a row where it was correct (relative error under ``REL_ERR_LIMIT``) and at least ``MARGIN``
faster than the row ours runs there: the tune times each candidate briefly (``runner.tune_timing``) and has ranked
rows 3% ahead that the bench then had 4% behind (BENCHMARKS.md round 12). The row takes the counts of the row it
beat, up to half-way to the layer's next tuned count on either side: a tune at one count says nothing past its
neighbours. Check a saved file with the bench at the counts it covers, with and without it.
"""

from __future__ import annotations

from ..kernels.moe_details.tuned_rows import TunedRow, from_dict
from .runner import REL_ERR_LIMIT

MARGIN = 0.03


def winners(tune: list[dict]) -> tuple[list[TunedRow], list[str]]:
    """``(rows, lines)``: from a bench report's ``tune`` entries, the rows to save and one line per tuned point."""
    rows, lines = [], []
    points = list(dict.fromkeys((t["shape"], t["tokens"]) for t in tune))
    for shape, tokens in points:
        timed = [t for t in tune if (t["shape"], t["tokens"]) == (shape, tokens) and "us" in t
                 and t["rel_err"] < REL_ERR_LIMIT]
        current = next((t for t in timed if t["shipped"]), None)
        if current is None:
            lines.append(f"{shape} {tokens}: the current row has no correct timing: nothing saved")
            continue
        best = min(timed, key=lambda t: t["us"])
        if best["us"] > (1 - MARGIN) * current["us"]:
            lines.append(f"{shape} {tokens}: the current row stays ({current['us']:.1f} us; the best rival "
                         f"{best['us']:.1f} is less than {MARGIN:.0%} ahead)")
            continue
        counts = sorted(t for s, t in points if s == shape)
        at = counts.index(tokens)
        first, last = current["span"]
        if at > 0:
            first = max(first, (counts[at - 1] + tokens) // 2 + 1)
        if at + 1 < len(counts):
            last = min(last, (tokens + counts[at + 1]) // 2)
        row = TunedRow(tuple(best["layer"]), first, last, from_dict(best["fields"], f"{shape} {tokens}"))
        rows.append(row)
        lines.append(f"{shape} {tokens}: tokens {first}-{last} on {best['config']} ({best['us']:.1f} us against "
                     f"{current['us']:.1f} for the current row)")
    return rows, lines
