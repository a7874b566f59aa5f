"""Internals of kernels/moe.py: layout, decoding, routing, GEMMs, configurations."""
