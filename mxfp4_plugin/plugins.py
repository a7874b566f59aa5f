"""The one plugin manager, and the backend registry it yields."""

from __future__ import annotations

import functools

import pluggy

from . import hookspecs
from .backends.base import Backend


def make_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    from . import backends as builtin

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(builtin, name="builtin")
    if load_entry_points:
        pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    return pm


def collect_backends(pm: pluggy.PluginManager) -> dict[str, type[Backend]]:
    """Every backend the registered plugins provide, by name; a name given twice is an error."""
    registry: dict[str, type[Backend]] = {}
    for provided in pm.hook.mxfp4_plugin_backends():
        for cls in provided:
            if not (isinstance(cls, type) and issubclass(cls, Backend)):
                raise TypeError(f"mxfp4_plugin_backends: expected Backend subclasses, got {cls!r}")
            if cls.name in registry and registry[cls.name] is not cls:
                raise ValueError(f"backend name {cls.name!r} is provided twice: by {registry[cls.name].__module__} "
                                 f"and {cls.__module__}")
            registry[cls.name] = cls
    return registry


@functools.lru_cache(maxsize=1)
def registered_backends() -> dict[str, type[Backend]]:
    return collect_backends(make_plugin_manager())
