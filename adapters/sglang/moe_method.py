"""``PluginMxfp4MoEMethod``: SGLang's FusedMoEMethodBase driving the core ``Mxfp4MoEMethod``.

- ``create_weights``: the core's canonical parameters, under SGLang's names (the biases are
  ``w13_weight_bias``/``w2_weight_bias``), carrying ``FusedMoE.weight_loader``, so SGLang's own
  gpt-oss loader fills them (its MXFP4 fast path copies into the leading slice; TP padding stays 0).
- no MoE runner: ``get_moe_runner_backend()`` is ``None``, which SGLang reads as "a direct kernel
  consuming the standard TopK format with local expert ids (-1 = on another EP rank)".
- ``process_weights_after_loading`` / ``apply``: the core's, which hands them to the chosen backend.

Imported only from ``PluginMxfp4Config.get_quant_method``: this module imports SGLang.
"""

from __future__ import annotations

import dataclasses

import torch
from sglang.srt.layers.moe.token_dispatcher.standard import StandardCombineInput
from sglang.srt.layers.moe.topk import TopKOutputChecker
from sglang.srt.layers.moe.utils import get_moe_runner_backend
from sglang.srt.layers.quantization.base_config import FusedMoEMethodBase
from sglang.srt.runtime_context import get_exec
from sglang.srt.utils import set_weight_attrs

from ...method import Mxfp4MoEMethod, empty_engine_parameters
from ...models import GPT_OSS_CHECKPOINT_TENSORS, spec_for_rank
from ...mx import BLOCK_SIZE
from ...platform import detect
from ...sharding import intermediate_slice
from ...spec import Activation, ActivationSpec, GateUpOrder, MoESpec, ParallelLayout
from .flags import FLAG, PARAM_NAMES, QUANTIZATION_NAME, plugin_backend_for


def spec_for_layer(layer, *, num_local_experts: int, hidden_size: int, intermediate_size: int,
                   params_dtype: torch.dtype, with_bias: bool) -> MoESpec:
    """The MoESpec of an SGLang ``FusedMoE`` on this rank; an unsupported layer is an error naming why.

    ``intermediate_size`` is the layer's whole size (before TP): the core splits it in whole
    32-element blocks as SGLang's gpt-oss loader does, which may allocate more per rank than
    SGLang's ``intermediate_size_per_partition`` (gpt-oss TP=4: 736 vs 720)."""
    cfg = layer.moe_runner_config
    where = f"{QUANTIZATION_NAME}: MoE layer {layer.layer_name or layer.layer_id}"
    # gpt-oss passes activation=config.hidden_act ("silu" in its config.json) and means SwiGLU-OAI
    # through gemm1_alpha / gemm1_clamp_limit; that pair is what identifies it.
    if cfg.gemm1_alpha is None or cfg.gemm1_clamp_limit is None:
        raise NotImplementedError(f"{where}: the SGLang adapter serves gpt-oss MoE layers (SwiGLU-OAI: gemm1_alpha and "
                                  f"gemm1_clamp_limit set); got activation={cfg.activation!r}, "
                                  f"gemm1_alpha={cfg.gemm1_alpha}, gemm1_clamp_limit={cfg.gemm1_clamp_limit}")
    unsupported = {name: value for name, value in (
        ("gemm1_beta", cfg.gemm1_beta), ("swiglu_limit", cfg.swiglu_limit),
        ("num_fused_shared_experts", cfg.num_fused_shared_experts or None),
        ("apply_router_weight_on_input", cfg.apply_router_weight_on_input or None),
        ("no_combine", cfg.no_combine or None)) if value is not None}
    if unsupported:
        raise NotImplementedError(f"{where}: not supported by the plugin: {unsupported}")
    spec = spec_for_rank(
        num_experts=layer.num_experts, top_k=layer.top_k, hidden_size=hidden_size, intermediate_size=intermediate_size,
        activation=ActivationSpec(Activation.SWIGLU_OAI, alpha=float(cfg.gemm1_alpha), limit=float(cfg.gemm1_clamp_limit)),
        gate_up_order=GateUpOrder.INTERLEAVED if cfg.gate_up_interleaved else GateUpOrder.CONCATENATED,
        has_bias=bool(with_bias), act_dtype=params_dtype,
        parallel=ParallelLayout(tp_rank=layer.moe_tp_rank, tp_size=layer.moe_tp_size,
                                ep_rank=layer.moe_ep_rank, ep_size=layer.moe_ep_size))
    if spec.num_local_experts != num_local_experts:
        raise NotImplementedError(f"{where}: SGLang places {num_local_experts} experts on EP rank {layer.moe_ep_rank}, "
                                  f"the plugin's contiguous placement {spec.num_local_experts} (redundant experts "
                                  f"or elastic EP are not supported)")
    if cfg.routed_scaling_factor is not None:
        spec = dataclasses.replace(spec, routed_scaling_factor=float(cfg.routed_scaling_factor))
    return spec


def loaded_shapes(spec: MoESpec, intermediate_size: int) -> dict[str, tuple[int, ...]]:
    """The shape of each canonical tensor as SGLang's gpt-oss loader hands it to this rank: whole
    local experts and this rank's TP slice of the intermediate dimension (which may be shorter
    than what is allocated, on the last rank)."""
    tp = spec.parallel
    n = len(range(intermediate_size)[intermediate_slice(intermediate_size, tp.tp_rank, tp.tp_size)])
    e, h = spec.num_local_experts, spec.hidden_size
    return {"w13_weight": (e, 2 * n, h // 2), "w13_weight_scale": (e, 2 * n, h // BLOCK_SIZE), "w13_bias": (e, 2 * n),
            "w2_weight": (e, h, n // 2), "w2_weight_scale": (e, h, n // BLOCK_SIZE), "w2_bias": (e, h)}


def requested_backend(platform) -> str:
    """The plugin backend that SGLang's resolved ``--moe-runner-backend`` asks for (``auto`` too)."""
    flag = get_moe_runner_backend()
    precision = getattr(get_exec().moe, "flashinfer_mxfp4_moe_precision", None)
    return plugin_backend_for(getattr(flag, "value", flag), platform, precision)


class PluginMxfp4MoEMethod(FusedMoEMethodBase):
    def __init__(self, quant_config, prefix: str = "") -> None:
        super().__init__()
        self.quant_config = quant_config
        self.prefix = prefix
        self.core: Mxfp4MoEMethod | None = None

    def create_weights(self, layer: torch.nn.Module, num_experts: int, hidden_size: int,
                       intermediate_size_per_partition: int, params_dtype: torch.dtype, **extra_weight_attrs) -> None:
        # FusedMoE pads hidden_size to 256 for a config named "mxfp4" under flashinfer_mxfp4; the
        # checkpoint and the activations keep the true size, which is what the core allocates.
        hidden = getattr(layer, "hidden_size_unpadded", hidden_size)
        intermediate = extra_weight_attrs.pop("moe_intermediate_size", None) \
            or intermediate_size_per_partition * layer.moe_tp_size
        with_bias = extra_weight_attrs.pop("with_bias", False)
        spec = spec_for_layer(layer, num_local_experts=num_experts, hidden_size=hidden, intermediate_size=intermediate,
                              params_dtype=params_dtype, with_bias=with_bias)
        platform = detect()
        decision = self.quant_config.decisions.decide(spec, requested_backend(platform), FLAG, platform)
        self.core = Mxfp4MoEMethod(spec, decision=decision)
        self.layer_name = layer.layer_name or f"layer {layer.layer_id}"
        self.loaded: set[str] = set()
        engine_loader = extra_weight_attrs.pop("weight_loader")
        expected = loaded_shapes(spec, intermediate)
        for name, tensor in self.core.allocate().items():
            param = torch.nn.Parameter(tensor, requires_grad=False)
            layer.register_parameter(PARAM_NAMES[name], param)
            set_weight_attrs(param, {**extra_weight_attrs,
                                     "weight_loader": self._checked_loader(name, expected[name], engine_loader)})

    def _checked_loader(self, name: str, expected: tuple[int, ...], engine_loader):
        """SGLang's loader copies a whole layer into the leading slice of a parameter, so a tensor
        that is too small would leave zeros unnoticed: check the shape this rank must receive."""
        sglang_name = PARAM_NAMES[name]

        def weight_loader(param, loaded_weight, weight_name: str = "", shard_id=None, expert_id=None, **kwargs):
            where = f"{QUANTIZATION_NAME}: {self.layer_name}.{sglang_name}"
            if expert_id is not None:
                raise NotImplementedError(f"{where}: the plugin loads whole MXFP4 layers (gpt-oss's loader); "
                                          f"got expert {expert_id} alone, shard {shard_id!r}")
            if tuple(loaded_weight.shape) != expected:
                raise ValueError(f"{where}: expected shape {expected} on this rank from the checkpoint, "
                                 f"got {tuple(loaded_weight.shape)}")
            if loaded_weight.dtype != param.dtype and not (param.dtype.is_floating_point
                                                           and loaded_weight.dtype.is_floating_point):
                raise TypeError(f"{where}: expected dtype {param.dtype}, got {loaded_weight.dtype}")
            engine_loader(param, loaded_weight, weight_name=weight_name, shard_id=shard_id, expert_id=expert_id,
                          **kwargs)
            self.loaded.add(name)

        return weight_loader

    def create_moe_runner(self, layer: torch.nn.Module, moe_runner_config) -> None:
        self.moe_runner_config = moe_runner_config
        self.runner = None  # the core computes: standard TopK, local ids

    def get_moe_runner_backend(self, layer: torch.nn.Module):
        return None

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        missing = sorted({p.name for p in self.core.params()} - self.loaded)
        if self.loaded and missing:
            # Nothing loaded at all is a loader that fills parameters directly (--load-format dummy).
            raise ValueError(f"{QUANTIZATION_NAME}: {self.layer_name}: the checkpoint gave no "
                             f"{[PARAM_NAMES[m] for m in missing]} (gpt-oss names: "
                             f"{[GPT_OSS_CHECKPOINT_TENSORS[m] for m in missing]}); an MXFP4 layer needs all of "
                             f"{[GPT_OSS_CHECKPOINT_TENSORS[p.name] for p in self.core.params()]}")
        tensors = {name: getattr(layer, sglang_name).data for name, sglang_name in PARAM_NAMES.items()
                   if hasattr(layer, sglang_name)}
        try:
            self.core.process_weights_after_loading(tensors)
        except (ValueError, TypeError) as e:
            raise type(e)(f"{QUANTIZATION_NAME}: {self.layer_name}: {e}") from e
        empty_engine_parameters(getattr(layer, name) for name in PARAM_NAMES.values() if hasattr(layer, name))

    def apply(self, layer: torch.nn.Module, dispatch_output) -> StandardCombineInput:
        topk = dispatch_output.topk_output
        if not TopKOutputChecker.format_is_standard(topk):
            raise TypeError(f"{QUANTIZATION_NAME}: expected SGLang's standard TopK output, got {type(topk).__name__}")
        if dispatch_output.hidden_states_scale is not None:
            raise TypeError(f"{QUANTIZATION_NAME}: expected unquantized hidden states from the dispatcher, "
                            f"got a hidden_states_scale")
        out = self.core.forward(dispatch_output.hidden_states, topk.topk_weights, topk.topk_ids, ids_are_local=True)
        return StandardCombineInput(hidden_states=out)
