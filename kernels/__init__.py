"""Our own Triton kernels (installed as mxfp4_plugin.kernels). They import no engine."""
