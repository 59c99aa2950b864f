"""The reference (llama.cpp 0c1e57098) seen through our probe, with pyggml's names.

This package is the only importer of the probe.  Results are canonical values (see
``_canon``) so that they compare with ``==`` against what pyggml computes.
Calls that can abort the process go through ``pyggml.reference.isolated`` (a subprocess).
"""

from __future__ import annotations

from . import gguf, model

__all__ = ["gguf", "model"]
