"""The bench's pieces that need no GPU: which backends it would run, its arithmetic, its table."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mxfp4_plugin.bench import report, shapes
from mxfp4_plugin.bench.runner import BenchOptions, backends_to_run, tune_candidates, tune_timing
from mxfp4_plugin.platform import Platform


def test_on_cpu_every_cuda_backend_is_left_out_with_its_reason():
    runnable, notes = backends_to_run(shapes.SHAPES["gpt-oss-20b"], Platform("cpu", packages=frozenset({"triton"})))
    assert set(runnable) == {"reference"}
    assert any(n.startswith("triton: skipped for this layer: needs a CUDA GPU") for n in notes)
    assert any(n.startswith("triton_kernels: skipped for this layer") for n in notes)
    assert any("flashinfer: not installed" in n for n in notes)


def test_roofline_arithmetic_for_gpt_oss():
    spec = shapes.SHAPES["gpt-oss-120b"]
    # w13 codes 5760 x 1440 + scales 5760 x 90 + w2 2880 x 1440 + 2880 x 90 + bf16 biases (5760 + 2880) x 2
    assert shapes.bytes_per_expert(spec) == 5760 * 1440 + 5760 * 90 + 2880 * 1440 + 2880 * 90 + 2 * (5760 + 2880)
    assert shapes.flops(spec, 4) == 2 * 4 * 3 * 2880 * 2880


def test_random_inputs_look_like_a_router():
    gen = torch.Generator().manual_seed(0)
    spec = shapes.SHAPES["deepseek-like"]
    i = shapes.random_inputs(spec, 5, torch.device("cpu"), gen)
    assert i.x.shape == (5, 4096) and i.x.dtype == torch.bfloat16
    assert i.topk_ids.shape == (5, 8) and i.topk_ids.dtype == torch.int32
    assert all(len(set(row.tolist())) == 8 for row in i.topk_ids)
    assert torch.allclose(i.topk_weights.sum(-1), torch.ones(5))


def test_a_points_routings_do_not_depend_on_the_token_counts_before_it():
    spec, cpu = shapes.SHAPES["gpt-oss-120b"], torch.device("cpu")
    alone, alone_check = shapes.point_inputs(spec, 4, 3, cpu, seed=0)
    shapes.point_inputs(spec, 16, 3, cpu, seed=0)  # another point drawn first changes nothing
    again, again_check = shapes.point_inputs(spec, 4, 3, cpu, seed=0)
    for a, b in zip(alone + [alone_check], again + [again_check]):
        assert torch.equal(a.topk_ids, b.topk_ids) and torch.equal(a.x, b.x)
    # the timed routings differ from each other and from the checked one, and the seed changes them
    ids = [i.topk_ids for i in alone + [alone_check]]
    assert all(not torch.equal(ids[i], ids[j]) for i in range(len(ids)) for j in range(i))
    other, _ = shapes.point_inputs(spec, 4, 3, cpu, seed=1)
    assert not torch.equal(other[0].topk_ids, alone[0].topk_ids)


def _report(tune: list[dict], tune_timing: dict | None = None) -> dict:
    """A bench report of one point of gpt-oss-20b at 4 tokens, as ``run_bench`` returns it."""
    point = {"shape": "gpt-oss-20b", "tokens": 4, "distinct_experts": 14.0, "bytes": 1.0, "flops": 1.0,
             "roofline_us": 50.0, "backends": {
                 "triton": {"us": 100.0, "rel_err": 2e-3, "timing": "cuda-graph"},
                 "triton_kernels": {"us": 150.0, "rel_err": 3e-3, "timing": "cuda-graph"},
                 "reference": {"skipped": "slow"}}}
    return {"date": "d", "machine": {"gpu": "G"}, "ceilings": {"copy_bytes_per_s": 4e12, "bf16_matmul_flop_per_s": 8e14},
            "notes": ["flashinfer: not installed"], "points": [point], "tune": tune, "tune_timing": tune_timing}


def test_table_reports_speedup_roofline_and_errors():
    text = report.table(_report(tune=[]))
    assert "1.50x" in text and "50%" in text and "2.0e-03" in text and "skip" in text
    assert "note: flashinfer: not installed" in text
    assert "tuning" not in text  # no --tune: no tuning section


def test_tuning_section_says_how_candidates_were_timed():
    options = BenchOptions(shapes=["gpt-oss-20b"], tokens=[4], rotations=4, iters=20, tune=True)
    assert tune_timing(options) == {"routings": 2, "iters": 10}
    rows = [{"shape": "gpt-oss-20b", "tokens": 4, "config": c, "us": us, "rel_err": err}
            for c, us, err in (("fast-but-wrong", 90.0, 0.5), ("right", 120.0, 2e-3), ("slower", 130.0, 2e-3))]
    text = report.table(_report(tune=rows, tune_timing=tune_timing(options)))
    assert "each timed on 2 routings and 10 replays" in text
    assert "120.0 us  right" in text and "fast-but-wrong" not in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where there is no GPU")
def test_bench_without_a_gpu_says_so():
    exe = Path(sys.executable).with_name("mxfp4-plugin")
    r = subprocess.run([exe, "bench", "--shapes", "gpt-oss-20b"], capture_output=True, text=True)
    assert r.returncode == 2 and "needs a CUDA GPU" in r.stderr


def test_tune_only_narrows_the_candidates():
    every = tune_candidates(4096)
    tails = tune_candidates(4096, r"^grouped m256/\d+\+")
    assert tails and set(tails) < set(every)
    assert all(c.block_m == 256 and c.tail_m for c in tails)
    assert tune_candidates(1) and not tune_candidates(1, "no such config")


def test_tune_times_the_shipped_row_first_whatever_tune_only_says():
    from mxfp4_plugin.kernels.moe_details import configs

    shipped = configs.select(1024, configs.GPT_OSS_20B)
    assert tune_candidates(1024, "no such config", shipped) == [shipped]
    every = tune_candidates(1024, None, shipped)
    assert every[0] == shipped and every.count(shipped) == 1
    assert set(every) == set(tune_candidates(1024)) | {shipped}


def test_tune_rivals_store_partials_as_the_shipped_row_does():
    from mxfp4_plugin.kernels.moe_details import configs

    shipped = configs.select(8192, configs.GPT_OSS_20B)
    assert shipped.partials_in_act_dtype
    rivals = tune_candidates(8192, None, shipped)[1:]
    assert rivals and all(c.partials_in_act_dtype for c in rivals)
    plain = configs.select(1024, configs.GPT_OSS_20B)
    assert not plain.partials_in_act_dtype
    assert not any(c.partials_in_act_dtype for c in tune_candidates(1024, None, plain))


def test_tune_report_shows_the_shipped_row_beside_the_fastest():
    options = BenchOptions(shapes=["gpt-oss-20b"], tokens=[4], tune=True)
    rows = [{"shape": "gpt-oss-20b", "tokens": 4, "config": c, "us": us, "rel_err": 2e-3, "shipped": c == "table's"}
            for c, us in (("table's", 120.0), ("rival", 110.0))]
    text = report.table(_report(tune=rows, tune_timing=tune_timing(options)))
    assert "110.0 us  rival" in text and "shipped     120.0 us  table's" in text


@pytest.mark.parametrize("args, message", [
    (["--tune-only", "m256"], "--tune-only: narrows --tune's candidates, but --tune was not given"),
    (["--tune", "--tune-only", "m256(/"], "--tune-only: expected a regular expression, got 'm256(/'"),
    (["--save-rows", "rows.json"], "--save-rows: saves --tune's winners, but --tune was not given"),
])
def test_bad_tune_only_is_refused_by_name(args, message, capsys):
    from mxfp4_plugin.cli import main

    assert main(["bench", *args]) == 2
    assert message in capsys.readouterr().err
