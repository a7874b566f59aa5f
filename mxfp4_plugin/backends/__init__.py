"""Built-in backends, one module each, registered through the plugin hook like any other."""

from ..hookspecs import hookimpl


@hookimpl
def mxfp4_plugin_backends():
    from .reference import ReferenceBackend
    from .triton import TritonBackend

    return [ReferenceBackend, TritonBackend]
