"""``mxfp4-plugin bench``: backends side by side against the roofline (``runner.py``), with
its layers (``shapes.py``), timing (``timing.py``), outputs (``report.py``) and, until the real
backend is merged, its own driver for OpenAI's triton_kernels (``peer.py``)."""
