"""The hook contract for backend providers (pluggy project name ``mxfp4_plugin``).

A third-party package adds backends by exposing a module or object with a
``@hookimpl``-decorated ``mxfp4_plugin_backends`` function under the entry-point group
``mxfp4_plugin``::

    [project.entry-points.mxfp4_plugin]
    my_backends = "my_package.mxfp4_backends"

The built-in backends register through this same hook (``mxfp4_plugin.backends``).
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "mxfp4_plugin"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def mxfp4_plugin_backends() -> list[type]:
    """Return the backend classes this plugin provides.

    Each is a subclass of ``mxfp4_plugin.backends.base.Backend`` with a unique ``name``.
    Called once per process, when the registry is first needed; importing the kernels a
    backend needs belongs in its ``supports``/``prepare``, not here, so that listing
    backends stays cheap on machines that cannot run them.
    """
