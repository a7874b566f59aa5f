"""Dependency rule: the core and the kernels import no engine."""

import subprocess
import sys

ENGINES = ("vllm", "sglang", "sgl_kernel", "flashinfer")


def test_core_and_kernels_import_no_engine(tmp_path):
    code = (
        "import sys\n"
        "import mxfp4_plugin, mxfp4_plugin.kernels, mxfp4_plugin.adapters, mxfp4_plugin.cli, mxfp4_plugin.plugins\n"
        "from mxfp4_plugin.plugins import registered_backends\n"
        "registered_backends()\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {ENGINES!r})\n"
        "assert not bad, bad\n"
    )
    # run outside the checkout so the installed package is what gets imported
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


def test_installed_as_one_namespace():
    import mxfp4_plugin.adapters
    import mxfp4_plugin.kernels

    assert mxfp4_plugin.kernels.__name__ == "mxfp4_plugin.kernels"
    assert mxfp4_plugin.adapters.__name__ == "mxfp4_plugin.adapters"
