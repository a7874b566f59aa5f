"""Tuned rows: launch configs for some layers and token ranges, from a JSON file, ahead of ``configs.TABLE``.

The shipped table is tuned on an H100 (BENCHMARKS.md). On another GPU, or for a layer of its own, a user tunes
there and serves the result, as vLLM's users do with fused_moe's JSON configs (``benchmark_moe.py --tune``):
``mxfp4-plugin bench --tune --save-rows FILE`` writes the winners, and ``MXFP4_PLUGIN_MOE_CONFIGS=FILE`` makes the
``triton`` backend run them; every count a row does not cover keeps the shipped table's row. The file::

    {"version": 1,
     "rows": [{"layer": [experts, top_k, hidden, intermediate], "tokens": [first, last], "config": {...}}]}

``layer`` is the layer on one rank (its local experts, its intermediate size after TP); ``config`` holds every field
of ``configs.MoEConfig`` (``gemm1`` / ``gemm2`` every field of ``configs.GemmConfig``), as ``to_dict`` writes them.
A file that does not read as this is refused whole, naming the row and the field.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import types
import typing
from collections.abc import Mapping, Sequence

from .configs import GemmConfig, MoEConfig, ShapeKey

ENV_VAR = "MXFP4_PLUGIN_MOE_CONFIGS"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class TunedRow:
    layer: ShapeKey
    first: int  # token counts first..last, both included
    last: int
    config: MoEConfig

    def to_dict(self) -> dict:
        return {"layer": list(self.layer), "tokens": [self.first, self.last], "config": to_dict(self.config)}


def to_dict(config: MoEConfig) -> dict:
    return dataclasses.asdict(config)


def from_dict(data: object, where: str) -> MoEConfig:
    """``where`` names the config in errors (e.g. ``rows.json: rows[2].config``)."""
    return _build(MoEConfig, data, where)


def load(path: str) -> tuple[TunedRow, ...]:
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the tuned rows file ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: expected JSON, line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return parse(data, path)


def parse(data: object, path: str) -> tuple[TunedRow, ...]:
    if not isinstance(data, dict) or set(data) != {"version", "rows"}:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: expected an object with the keys 'version' and 'rows', got {found}")
    if data["version"] != VERSION:
        raise ValueError(f"{path}: version: expected {VERSION}, got {data['version']!r}")
    if not isinstance(data["rows"], list):
        raise ValueError(f"{path}: rows: expected a list, got {type(data['rows']).__name__}")
    rows = tuple(_row(item, f"{path}: rows[{i}]") for i, item in enumerate(data["rows"]))
    for i, a in enumerate(rows):
        for j, b in enumerate(rows[:i]):
            if a.layer == b.layer and a.first <= b.last and b.first <= a.last:
                raise ValueError(f"{path}: rows[{j}] and rows[{i}] both cover layer {list(a.layer)} at tokens "
                                 f"{max(a.first, b.first)}-{min(a.last, b.last)}: a count takes one row")
    return rows


def dump(rows: Sequence[TunedRow], path: str) -> None:
    data = {"version": VERSION, "rows": [r.to_dict() for r in rows]}
    parse(data, path)  # never writes what load would refuse (overlapping rows)
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


def for_layer(rows: Sequence[TunedRow], layer: ShapeKey) -> tuple[TunedRow, ...]:
    return tuple(r for r in rows if r.layer == tuple(layer))


def row_at(rows: Sequence[TunedRow], num_tokens: int) -> TunedRow | None:
    """The row covering ``num_tokens`` (``rows`` of one layer), or None: the shipped table's row runs."""
    return next((r for r in rows if r.first <= num_tokens <= r.last), None)


def env_path(env: Mapping[str, str] | None = None) -> str | None:
    """The file ``MXFP4_PLUGIN_MOE_CONFIGS`` names, or None when it is unset or empty."""
    return (os.environ if env is None else env).get(ENV_VAR, "").strip() or None


def from_env(env: Mapping[str, str] | None = None) -> tuple[str | None, tuple[TunedRow, ...]]:
    """``(path, rows)`` of the file ``MXFP4_PLUGIN_MOE_CONFIGS`` names; ``(None, ())`` when it is unset."""
    path = env_path(env)
    if path is None:
        return None, ()
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise ValueError(f"{ENV_VAR}={path}: cannot read the tuned rows file ({exc.strerror})") from None
    return path, _cached_load(path, stamp)


@functools.lru_cache(maxsize=8)
def _cached_load(path: str, stamp: int) -> tuple[TunedRow, ...]:  # one read per file version, not per layer
    return load(path)


def _row(item: object, where: str) -> TunedRow:
    if not isinstance(item, dict) or set(item) != {"layer", "tokens", "config"}:
        found = sorted(item) if isinstance(item, dict) else type(item).__name__
        raise ValueError(f"{where}: expected an object with the keys 'layer', 'tokens' and 'config', got {found}")
    layer, tokens = item["layer"], item["tokens"]
    if not (isinstance(layer, list) and len(layer) == 4 and all(_is_int(v) and v >= 1 for v in layer)):
        raise ValueError(f"{where}.layer: expected [experts, top_k, hidden, intermediate], four positive integers, "
                         f"got {layer!r}")
    if not (isinstance(tokens, list) and len(tokens) == 2 and all(_is_int(v) for v in tokens)
            and 1 <= tokens[0] <= tokens[1]):
        raise ValueError(f"{where}.tokens: expected [first, last] with 1 <= first <= last, got {tokens!r}")
    return TunedRow(tuple(layer), tokens[0], tokens[1], from_dict(item["config"], f"{where}.config"))


def _build(cls: type, data: object, where: str):
    """An instance of the config dataclass ``cls`` from a dict holding exactly its fields, each of its type."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object with the fields of {cls.__name__}, got {type(data).__name__}")
    unknown, missing = sorted(set(data) - set(fields)), sorted(set(fields) - set(data))
    if unknown or missing:
        raise ValueError(f"{where}: expected the fields of {cls.__name__}; unknown: {unknown or 'none'}, "
                         f"missing: {missing or 'none'}")
    hints = typing.get_type_hints(cls)
    values = {name: _value(hints[name], data[name], f"{where}.{name}") for name in fields}
    try:
        return cls(**values)
    except ValueError as exc:  # the dataclass's own check names the field
        raise ValueError(f"{where}: {exc}") from None


def _value(hint: object, value: object, where: str):
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option in (GemmConfig, MoEConfig) and isinstance(value, dict):
            return _build(option, value, where)
        if option is bool and isinstance(value, bool):
            return value
        if option is int and _is_int(value):
            return value
    names = " or ".join("null" if o is type(None) else ("an object" if o in (GemmConfig, MoEConfig) else o.__name__)
                        for o in options)
    raise ValueError(f"{where}: expected {names}, got {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
