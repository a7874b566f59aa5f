"""``PluginMxfp4MoEMethod``: vLLM's FusedMoEMethodBase, driving the core ``Mxfp4MoEMethod``.

vLLM routes (softmax, top-k) and hands us ``topk_weights``/``topk_ids`` with global ids; we
return the weighted top-k sum, and vLLM all-reduces across ranks (a modular method).
Imported only from ``register()``: this module imports vLLM.
"""

from __future__ import annotations

import torch
from vllm.model_executor.layers.fused_moe import FusedMoEConfig, FusedMoEMethodBase
from vllm.model_executor.utils import set_weight_attrs

from ...method import Mxfp4MoEMethod, empty_engine_parameters
from ...models import GPT_OSS_CHECKPOINT_TENSORS, gpt_oss_activation
from ...sharding import intermediate_per_rank
from ...spec import Activation, ActivationSpec, GateUpOrder, MoESpec, ParallelLayout
from .flags import ACTIVATIONS, PARTIAL_DIMS
from .loading import LOADED, PARTIAL_DIM, wrap_weight_loader


class PluginMxfp4MoEMethod(FusedMoEMethodBase):
    def __init__(self, moe: FusedMoEConfig, quant_config) -> None:
        super().__init__(moe)
        self.quant_config = quant_config
        # vLLM's gpt-oss streamed-expert loader treats tensors as packed MXFP4 only for these names.
        self.weight_dtype = "mxfp4"
        self.core: Mxfp4MoEMethod | None = None

    def maybe_roundup_sizes(self, hidden_size, intermediate_size_per_partition, act_dtype, moe_parallel_config):
        hidden, _ = super().maybe_roundup_sizes(hidden_size, intermediate_size_per_partition, act_dtype,
                                                moe_parallel_config)
        # The gpt-oss loader gives each rank ceil(I/32 / tp) blocks, not I // tp (ENGINE_NOTES 2.4).
        return hidden, intermediate_per_rank(self.moe.intermediate_size, moe_parallel_config.tp_size)

    def layer_spec(self, layer: torch.nn.Module, num_experts: int, hidden_size: int, intermediate_size: int,
                   params_dtype: torch.dtype) -> MoESpec:
        moe = self.moe
        kind, order = _activation(moe.activation.value)
        if kind == Activation.SWIGLU_OAI.value:
            hf = self.quant_config.hf_config
            defaults = gpt_oss_activation(hf.to_dict() if hf is not None else {})
            activation = ActivationSpec(Activation.SWIGLU_OAI,
                                        alpha=moe.swiglu_alpha if moe.swiglu_alpha is not None else defaults.alpha,
                                        limit=moe.swiglu_limit if moe.swiglu_limit is not None else defaults.limit)
        else:
            activation = ActivationSpec(Activation(kind))
        if layer.apply_router_weight_on_input:
            raise ValueError(f"{layer.layer_name}: apply_router_weight_on_input is not supported by mxfp4-plugin")
        par = moe.moe_parallel_config
        expert_map = layer.expert_map
        scaling = float(layer.routed_scaling_factor)
        return MoESpec(
            num_experts=moe.num_experts, num_local_experts=num_experts, top_k=moe.experts_per_token,
            hidden_size=hidden_size, intermediate_size=intermediate_size, activation=activation,
            gate_up_order=GateUpOrder(order), has_bias=moe.has_bias, act_dtype=params_dtype,
            routed_scaling_factor=None if scaling == 1.0 else scaling,
            parallel=ParallelLayout(tp_rank=par.tp_rank, tp_size=par.tp_size, ep_rank=par.ep_rank, ep_size=par.ep_size),
            expert_map=tuple(expert_map.tolist()) if expert_map is not None else None)

    def create_weights(self, layer: torch.nn.Module, num_experts: int, hidden_size: int,
                       intermediate_size_per_partition: int, params_dtype: torch.dtype, **extra_weight_attrs) -> None:
        spec = self.layer_spec(layer, num_experts, hidden_size, intermediate_size_per_partition, params_dtype)
        self.core = Mxfp4MoEMethod(spec, decision=self.quant_config.decide(spec, self.moe.moe_backend))
        attrs = {**extra_weight_attrs, "weight_loader": wrap_weight_loader(extra_weight_attrs["weight_loader"])}
        for p in self.core.params():
            param = torch.nn.Parameter(torch.zeros(p.shape, dtype=p.dtype), requires_grad=False)
            layer.register_parameter(p.name, param)
            set_weight_attrs(param, {**attrs, PARTIAL_DIM: PARTIAL_DIMS[p.name]})

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        tensors = {}
        for p in self.core.params():
            param = getattr(layer, p.name)
            if not getattr(param, LOADED, False):
                raise ValueError(f"{layer.layer_name}.{p.name}: never loaded; the checkpoint has no "
                                 f"{GPT_OSS_CHECKPOINT_TENSORS[p.name]} for this layer")
            tensors[p.name] = param.data
        self.core.process_weights_after_loading(tensors)
        empty_engine_parameters(getattr(layer, p.name) for p in self.core.params())

    def get_fused_moe_quant_config(self, layer: torch.nn.Module):
        return None  # we run our own kernels, not vLLM's modular ones

    def apply(self, layer, x, topk_weights, topk_ids, shared_experts=None, shared_experts_input=None):
        if shared_experts is not None:
            raise NotImplementedError(f"{layer.layer_name}: shared experts are not supported by mxfp4-plugin")
        return self.core.forward(x, topk_weights, topk_ids)


def _activation(value: str) -> tuple[str, str]:
    if value not in ACTIVATIONS:
        raise ValueError(f"MoE activation {value!r} is not supported by mxfp4-plugin; supported: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[value]
