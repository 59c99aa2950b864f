"""Bench cases of model loading (llama_model_load_from_file vs pyggml.Model.load)."""

from __future__ import annotations

from collections.abc import Callable

from . import Pair


def _load_smollm2_mmap() -> Pair:
    """Full load of SmolLM2-135M Q4_1 with mmap (metadata, hparams, vocab keys, weights mapped
    into CPU buffers, the vocabulary built), freed after each run.  The reference side runs
    the probe in-process; both sides build the vocabulary as part of the load."""
    from ..model import Model
    from ..parity import corpus
    from ..reference import model as ref

    path = str(corpus.smollm2())

    def ours() -> None:
        Model.load(path, use_mmap=True).close()

    def reference() -> None:
        handle, _, _ = ref.load(path, use_mmap=True)
        if not handle:
            raise RuntimeError("the reference failed to load SmolLM2")
        ref.free(handle)

    return Pair(ours, reference, note="both sides build the vocabulary")


CASES: dict[str, Callable[[], Pair]] = {
    "load-smollm2-mmap": _load_smollm2_mmap,
}
