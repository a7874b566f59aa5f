"""One sub-package per serving engine (installed as mxfp4_plugin.adapters).

Each adapter imports its engine lazily, inside its register function."""
