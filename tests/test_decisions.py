from mxfp4_plugin.decisions import DecisionCache
from mxfp4_plugin.models import GPT_OSS_SWIGLU_ALPHA, GPT_OSS_SWIGLU_LIMIT
from mxfp4_plugin.platform import Platform
from mxfp4_plugin.spec import Activation, ActivationSpec, MoESpec


def spec(hidden):
    act = ActivationSpec(Activation.SWIGLU_OAI, alpha=GPT_OSS_SWIGLU_ALPHA, limit=GPT_OSS_SWIGLU_LIMIT)
    return MoESpec(num_experts=4, top_k=2, hidden_size=hidden, intermediate_size=64, activation=act)


def test_one_decision_and_one_line_per_distinct_layer(monkeypatch):
    monkeypatch.delenv("MXFP4_PLUGIN_BACKEND", raising=False)
    lines = []
    cache = DecisionCache(lines.append)
    cpu = Platform("cpu")
    first = cache.decide(spec(64), "auto", "--flag", cpu)
    assert cache.decide(spec(64), "auto", "--flag", cpu) is first
    assert len(lines) == 1 and "backend 'reference'" in lines[0]
    cache.decide(spec(128), "reference", "--flag", cpu)
    assert len(cache) == 2 and len(lines) == 2 and "requested by --flag" in lines[1]
