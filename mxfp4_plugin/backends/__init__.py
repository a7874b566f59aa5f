"""Built-in backends, one module each, registered through the plugin hook like any other.

Importing a backend module imports no kernel library: each imports its library (triton,
triton_kernels, FlashInfer, vLLM) inside ``prepare``/``forward``, so listing backends stays
cheap on machines that cannot run them.
"""

from ..hookspecs import hookimpl


@hookimpl
def mxfp4_plugin_backends():
    from .flashinfer_cutlass import FlashInferCutlassBackend
    from .flashinfer_trtllm import FlashInferTrtllmBackend, FlashInferTrtllmMxfp8Backend
    from .marlin import MarlinBackend
    from .openai_triton_kernels import TritonKernelsBackend
    from .reference import ReferenceBackend
    from .triton import TritonBackend

    return [ReferenceBackend, TritonBackend, TritonKernelsBackend, FlashInferCutlassBackend, FlashInferTrtllmBackend,
            FlashInferTrtllmMxfp8Backend, MarlinBackend]
