"""The kernel's launch-configuration table (``kernels/moe_details/configs.py``): every row valid,
every token count and shape served, bad configurations refused by name. No GPU, no Triton."""

import pytest

from mxfp4_plugin.kernels.moe_details import configs
from mxfp4_plugin.kernels.moe_details.configs import GemmConfig, MoEConfig

SHAPES = [configs.GPT_OSS_120B, configs.GPT_OSS_20B, configs.DEEPSEEK_LIKE, (64, 6, 2048, 1408)]


@pytest.mark.parametrize("shape", SHAPES)
def test_every_token_count_has_a_row(shape):
    for tokens in (1, 2, 4, 5, 16, 63, 64, 256, 1023, 1024, 4096, 8192, 1 << 20):
        config = configs.select(tokens, shape)
        assert isinstance(config, MoEConfig)
        assert config.grouped or tokens <= 16, f"decode path chosen for {tokens} tokens of {shape}"


def test_rows_are_in_token_order_per_shape():
    last = {}
    for key, max_tokens, _ in configs.TABLE:
        assert max_tokens > last.get(key, 0), f"row for {key} up to {max_tokens} tokens is shadowed"
        last[key] = max_tokens
    assert all(limit == 1 << 62 for limit in last.values()), f"a shape's rows end early: {last}"


def test_unknown_shapes_take_the_any_rows():
    any_rows = [c for key, _, c in configs.TABLE if key is configs.ANY]
    assert configs.select(1, (8, 2, 1024, 512)) is any_rows[0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(block_n=64, block_k=48, num_warps=4, num_stages=3), "block_k: expected a power of two >= 32, got 48"),
    (dict(block_n=8, block_k=64, num_warps=4, num_stages=3), "block_n: expected a power of two >= 16, got 8"),
    (dict(block_n=64, block_k=64, num_warps=4, num_stages=3, split_k=0), "split_k: expected >= 1, got 0"),
    (dict(block_n=64, block_k=64, num_warps=4, num_stages=3, weights_as_a=False, prefetch_x=True),
     "prefetch_x: serves the weights-as-A orientation only"),
    (dict(block_n=64, block_k=64, num_warps=4, num_stages=3, maxnreg=16),
     "maxnreg: expected None or 32..255 registers per thread, got 16"),
    (dict(block_n=64, block_k=64, num_warps=4, num_stages=3, maxnreg=256),
     "maxnreg: expected None or 32..255 registers per thread, got 256"),
    (dict(block_n=64, block_k=256, num_warps=4, num_stages=3, block_k2=256),
     r"block_k2: expected 0 or a power of two >= 32 below block_k \(256\), got 256"),
    (dict(block_n=64, block_k=256, num_warps=4, num_stages=3, block_k2=48),
     r"block_k2: expected 0 or a power of two >= 32 below block_k \(256\), got 48"),
    (dict(block_n=64, block_k=256, num_warps=4, num_stages=3, block_k2=16),
     r"block_k2: expected 0 or a power of two >= 32 below block_k \(256\), got 16"),
])
def test_bad_gemm_config_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GemmConfig(**kwargs)


def test_bad_layer_config_names_the_gemm():
    g = GemmConfig(64, 128, 4, 3)
    with pytest.raises(ValueError, match="gemm2.joint: only GEMM1"):
        MoEConfig(True, 16, g, GemmConfig(64, 128, 4, 3, joint=True))
    with pytest.raises(ValueError, match="gemm1.split_k: split-K serves the decode path only, got 2"):
        MoEConfig(True, 16, GemmConfig(64, 128, 4, 3, split_k=2), g)
    with pytest.raises(ValueError, match="gemm2.split_k: split-K serves the decode path only, got 2"):
        MoEConfig(True, 16, g, GemmConfig(64, 128, 4, 3, split_k=2))
    MoEConfig(False, 16, GemmConfig(64, 128, 4, 3, split_k=2), GemmConfig(64, 128, 4, 3, split_k=2))  # decode: both


@pytest.mark.parametrize("grouped, block_m, small_m", [(True, 64, 64), (True, 64, 8), (True, 64, 24), (False, 16, 16)])
def test_bad_small_m_is_refused(grouped, block_m, small_m):
    g = GemmConfig(64, 128, 4, 3)
    with pytest.raises(ValueError, match=f"small_m: expected 0 or a power of two >= 16 below block_m \\({block_m}\\)"
                                         f" on the grouped path, got {small_m}"):
        MoEConfig(grouped, block_m, g, g, small_m)


@pytest.mark.parametrize("grouped, block_m, tail_m", [(True, 64, 128), (True, 64, 8), (True, 64, 48), (False, 16, 16)])
def test_bad_tail_m_is_refused(grouped, block_m, tail_m):
    g = GemmConfig(64, 128, 4, 3)
    with pytest.raises(ValueError, match=f"tail_m: expected 0 or a power of two >= 16 up to block_m \\({block_m}\\)"
                                         f" on the grouped path, got {tail_m}"):
        MoEConfig(grouped, block_m, g, g, tail_m=tail_m)


def test_tail_launch_needs_a_tail():
    g = GemmConfig(64, 128, 4, 3)
    with pytest.raises(ValueError, match="gemm2.tail_launch: launches the blocks with a tail apart, but tail_m is 0"):
        MoEConfig(True, 64, g, GemmConfig(64, 128, 4, 3, tail_launch=g))
    apart = MoEConfig(True, 64, GemmConfig(64, 128, 4, 3, tail_launch=g), g, tail_m=16)
    assert apart.describe() == "grouped m64+16 g1(n64 k128 w4 s3 tail-apart) g2(n64 k128 w4 s3)"
    own = MoEConfig(True, 64, g, GemmConfig(64, 128, 4, 3, tail_launch=GemmConfig(64, 64, 4, 2)), tail_m=16)
    assert own.describe() == "grouped m64+16 g1(n64 k128 w4 s3) g2(n64 k128 w4 s3 tail-apart(n64 k64 w4 s2))"


def test_bad_tail_launch_is_refused():
    g = GemmConfig(64, 128, 4, 3)
    with pytest.raises(ValueError, match="tail_launch: expected a config without a tail launch or split-K of its own"):
        GemmConfig(64, 128, 4, 3, tail_launch=GemmConfig(64, 128, 4, 3, tail_launch=g))
    with pytest.raises(ValueError, match="tail_launch: expected a config without a tail launch or split-K of its own"):
        GemmConfig(64, 128, 4, 3, tail_launch=GemmConfig(64, 128, 4, 3, split_k=2))
    with pytest.raises(ValueError, match="gemm2.tail_launch.joint: only GEMM1"):
        MoEConfig(True, 64, g, GemmConfig(64, 128, 4, 3, tail_launch=GemmConfig(64, 128, 4, 3, joint=True)), tail_m=16)


def test_small_m_and_tail_m_show_in_the_description():
    g = GemmConfig(64, 128, 4, 3)
    assert MoEConfig(True, 64, g, g, 32).describe().startswith("grouped m64/32 g1(")
    assert MoEConfig(True, 64, g, g, 32, 16).describe().startswith("grouped m64/32+16 g1(")
    assert MoEConfig(True, 64, g, g, tail_m=64).describe().startswith("grouped m64+64 g1(")


def test_register_cap_shows_in_the_description():
    capped = GemmConfig(128, 128, 4, 3, prefetch_x=True, maxnreg=128)
    assert MoEConfig(True, 16, GemmConfig(64, 256, 4, 4), capped).describe() == \
        "grouped m16 g1(n64 k256 w4 s4) g2(n128 k128 w4 s3 px r128)"


def test_scales_at_load_shows_in_the_description():
    at_load = GemmConfig(64, 128, 4, 3, prefetch_x=True, scales_at_load=True, maxnreg=168)
    assert MoEConfig(True, 16, at_load, GemmConfig(64, 128, 4, 3)).describe() == \
        "grouped m16 g1(n64 k128 w4 s3 px sl r168) g2(n64 k128 w4 s3)"


def test_two_part_k_step_shows_in_the_description():
    plus = GemmConfig(64, 256, 4, 3, prefetch_x=True, block_k2=64)
    assert MoEConfig(True, 16, GemmConfig(64, 128, 4, 3, block_k2=32), plus).describe() == \
        "grouped m16 g1(n64 k128+32 w4 s3) g2(n64 k256+64 w4 s3 px)"


def test_partials_in_act_dtype_serve_the_grouped_path_and_show_in_the_description():
    g = GemmConfig(64, 128, 4, 3)
    with pytest.raises(ValueError, match="partials_in_act_dtype: serves the grouped path .* got grouped=False"):
        MoEConfig(False, 16, g, g, partials_in_act_dtype=True)
    assert MoEConfig(True, 64, g, g, partials_in_act_dtype=True).describe() == \
        "grouped m64 g1(n64 k128 w4 s3) g2(n64 k128 w4 s3) partials-act"


def test_tuning_tries_decode_only_where_it_can_win():
    for config in configs.CANDIDATES:
        if not config.grouped:
            assert configs.worth_trying(config, 4) and not configs.worth_trying(config, 64)
    assert all(any(configs.worth_trying(c, m) for c in configs.CANDIDATES) for m in (1, 16, 256, 1024, 8192))
