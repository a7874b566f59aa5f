"""mxfp4-plugin: one MXFP4 Mixture-of-Experts method for vLLM and SGLang.

The core (this package) imports torch and pluggy, never an engine.
"""

from .method import Mxfp4MoEMethod
from .oracle import BackendRequestError, Decision, choose
from .platform import Platform, detect
from .spec import Activation, ActivationSpec, GateUpOrder, MoESpec, ParallelLayout

__version__ = "0.1.0"

__all__ = [
    "Activation", "ActivationSpec", "BackendRequestError", "Decision", "GateUpOrder", "MoESpec",
    "Mxfp4MoEMethod", "ParallelLayout", "Platform", "choose", "detect",
]
