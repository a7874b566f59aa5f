"""Tuned rows (``MXFP4_PLUGIN_MOE_CONFIGS``): the file's format and checks, how the triton backend and the oracle's
log line use it, and how ``bench --tune --save-rows`` picks the rows it writes. No GPU needed."""

import json

import pytest
import torch

from mxfp4_plugin import Activation, ActivationSpec, MoESpec, Platform, choose
from mxfp4_plugin.backends.triton import TritonBackend, layer_key
from mxfp4_plugin.bench.save_rows import winners
from mxfp4_plugin.kernels.moe_details import configs, tuned_rows
from mxfp4_plugin.kernels.moe_details.tuned_rows import ENV_VAR, TunedRow

SPEC = MoESpec(num_experts=8, top_k=2, hidden_size=64, intermediate_size=64,
               activation=ActivationSpec(Activation.SWIGLU_OAI, alpha=1.702, limit=7.0), has_bias=True)
KEY = layer_key(SPEC)
H100 = Platform("cuda", (9, 0), frozenset({"triton"}))
DECODE = configs.select(1, KEY)
GROUPED = configs.select(4096, KEY)


def _file(tmp_path, rows, name="rows.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"version": 1, "rows": rows}))
    return str(path)


def _row(first, last, config=GROUPED, layer=KEY):
    return {"layer": list(layer), "tokens": [first, last], "config": tuned_rows.to_dict(config)}


def test_every_shipped_and_candidate_config_survives_the_file(tmp_path):
    every = list(dict.fromkeys([row[2] for row in configs.TABLE] + list(configs.CANDIDATES)))
    rows = [TunedRow(KEY, 10 * i + 1, 10 * i + 10, c) for i, c in enumerate(every)]
    path = str(tmp_path / "all.json")
    tuned_rows.dump(rows, path)
    assert tuned_rows.load(path) == tuple(rows)


def test_a_tuned_row_wins_over_the_table_in_its_range_only():
    rows = tuned_rows.for_layer((TunedRow(KEY, 5, 9, GROUPED), TunedRow((1, 1, 32, 32), 1, 100, DECODE)), KEY)
    assert [tuned_rows.row_at(rows, m) for m in (4, 5, 9, 10)] == [None, rows[0], rows[0], None]


@pytest.mark.parametrize("data, message", [
    ([], "rows.json: expected an object with the keys 'version' and 'rows', got list"),
    ({"version": 2, "rows": []}, "rows.json: version: expected 1, got 2"),
    ({"version": 1, "rows": {}}, "rows.json: rows: expected a list, got dict"),
    ({"version": 1, "rows": [{"layer": [8, 2, 64], "tokens": [1, 2], "config": {}}]},
     "rows.json: rows[0].layer: expected [experts, top_k, hidden, intermediate], four positive integers, got [8, 2, 64]"),
    ({"version": 1, "rows": [_row(0, 4)]}, "rows.json: rows[0].tokens: expected [first, last] with 1 <= first <= last, got [0, 4]"),
    ({"version": 1, "rows": [_row(9, 4)]}, "rows[0].tokens: expected [first, last] with 1 <= first <= last, got [9, 4]"),
    ({"version": 1, "rows": [_row(1, 8), _row(8, 16)]},
     "rows.json: rows[0] and rows[1] both cover layer [8, 2, 64, 64] at tokens 8-8: a count takes one row"),
    ({"version": 1, "rows": [{"layer": list(KEY), "tokens": [1, 2], "config": [], "extra": 1}]},
     "rows[0]: expected an object with the keys 'layer', 'tokens' and 'config', got ['config', 'extra', 'layer', 'tokens']"),
])
def test_a_bad_file_is_refused_by_name(tmp_path, data, message):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as exc:
        tuned_rows.load(str(path))
    assert str(exc.value).endswith(message) and str(path) in str(exc.value)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["gemm1"].update(block_n=24), "rows[0].config.gemm1: block_n: expected a power of two >= 16, got 24"),
    (lambda c: c["gemm1"].update(block_n=True), "rows[0].config.gemm1.block_n: expected int, got True"),
    (lambda c: c["gemm2"].update(maxnreg="128"), "rows[0].config.gemm2.maxnreg: expected int or null, got '128'"),
    (lambda c: c.update(grouped=1), "rows[0].config.grouped: expected bool, got 1"),
    (lambda c: c["gemm1"].update(blok_k=64), "rows[0].config.gemm1: expected the fields of GemmConfig; unknown: "
                                             "['blok_k'], missing: none"),
    (lambda c: c.pop("small_m"), "rows[0].config: expected the fields of MoEConfig; unknown: none, missing: ['small_m']"),
    (lambda c: c["gemm2"].update(tail_launch=7), "rows[0].config.gemm2.tail_launch: expected an object or null, got 7"),
    (lambda c: c.update(small_m=256), "rows[0].config: small_m: expected 0 or a power of two >= 16 below block_m"),
])
def test_a_bad_config_names_the_row_and_the_field(tmp_path, change, message):
    row = _row(1, 4)
    change(row["config"])
    with pytest.raises(ValueError, match="^" + str(tmp_path).replace("\\", "\\\\") + r".*" ) as exc:
        tuned_rows.load(_file(tmp_path, [row]))
    assert message in str(exc.value)


def test_a_file_that_is_not_json_or_not_there(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{\"version\": 1,")
    with pytest.raises(ValueError, match=r"bad.json: expected JSON, line 1 column 15"):
        tuned_rows.load(str(bad))
    with pytest.raises(ValueError, match=f"{ENV_VAR}=.*missing.json: cannot read the tuned rows file"):
        tuned_rows.from_env({ENV_VAR: str(tmp_path / "missing.json")})
    assert tuned_rows.from_env({}) == (None, ())


def test_the_backend_runs_a_tuned_row_and_the_table_elsewhere(tmp_path, monkeypatch):
    from mxfp4_plugin.kernels import moe

    monkeypatch.setenv(ENV_VAR, _file(tmp_path, [_row(2, 3, GROUPED)]))
    backend = TritonBackend(SPEC, H100)
    backend.experts = object()  # forward's own work is the kernels' (tests/test_triton_interpreter.py)
    seen = []
    monkeypatch.setattr(moe, "fused_moe", lambda *args, config=None: seen.append(config))
    for m in (1, 3, 5):
        backend.forward(torch.zeros(m, 64), torch.zeros(m, 2), torch.zeros(m, 2, dtype=torch.int32))
    assert seen == [None, GROUPED, None]  # None: fused_moe takes the table's row
    assert backend.row_for(3) == (GROUPED, 2, 3)
    assert backend.row_for(5) == (configs.select(5, KEY), *configs.span(5, KEY))


def test_the_decision_says_which_rows_run_and_when_none_do(tmp_path, monkeypatch):
    path = _file(tmp_path, [_row(2, 3), _row(100, 200)])
    monkeypatch.setenv(ENV_VAR, path)
    line = choose(SPEC, H100).summary()
    assert f"kernel configs from {ENV_VAR}={path} for this layer [8, 2, 64, 64] at tokens 2-3, 100-200, the " \
           f"shipped table elsewhere" in line
    other = MoESpec(**{**SPEC.__dict__, "hidden_size": 128})
    assert (f"{ENV_VAR}={path} has no row for this layer [8, 2, 128, 64] (its layers: [8, 2, 64, 64]): the shipped "
            f"table runs") in choose(other, H100).summary()
    assert f"{ENV_VAR}={path} is not used: 'reference' runs launch configs of its own" in \
        choose(SPEC, Platform("cpu")).summary()
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone.json"))
    with pytest.raises(ValueError, match="gone.json: cannot read the tuned rows file"):
        choose(SPEC, H100)


def test_the_table_rows_span_the_counts_they_serve():
    assert configs.span(1, configs.GPT_OSS_20B) == (1, 1)
    assert configs.span(700, configs.GPT_OSS_20B) == (641, 1024)
    assert configs.span(1600, configs.DEEPSEEK_LIKE) == (1537, 2048)
    assert configs.span(10 ** 6, KEY)[0] == max(m for key, m, _ in configs.TABLE if key is configs.ANY
                                                 and m < 10 ** 6) + 1


def _tuned(tokens, config, us, shipped, span=(1537, 2048), rel_err=2e-3):
    return {"shape": "deepseek-like", "tokens": tokens, "config": config.describe(), "us": us, "rel_err": rel_err,
            "shipped": shipped, "layer": list(configs.DEEPSEEK_LIKE), "span": list(span),
            "fields": tuned_rows.to_dict(config)}


def test_save_rows_keeps_clear_correct_winners_over_the_row_they_beat():
    table, rival, other = configs.select(1792, configs.DEEPSEEK_LIKE), DECODE, GROUPED
    tune = [_tuned(1792, table, 100.0, True), _tuned(1792, rival, 90.0, False), _tuned(1792, other, 80.0, False,
                                                                                         rel_err=0.5),
            _tuned(1600, table, 100.0, True), _tuned(1600, rival, 98.0, False),  # under the 3% margin
            _tuned(2000, table, 100.0, True), _tuned(2000, other, 50.0, False)]
    rows, lines = winners(tune)
    # 1792 beat the row at 1537-2048: from half-way to 1600 to half-way to 2000; 2000 from there to the row's end
    assert rows == [TunedRow(configs.DEEPSEEK_LIKE, 1697, 1896, rival), TunedRow(configs.DEEPSEEK_LIKE, 1897, 2048, other)]
    assert any("1600: the current row stays (100.0 us; the best rival 98.0 is less than 3% ahead)" in x for x in lines)
    assert winners([_tuned(1792, rival, 90.0, False)])[1] == [
        "deepseek-like 1792: the current row has no correct timing: nothing saved"]
