"""llama_model_load_from_file as the reference does it, through the probe (``ps_model_load``).

``load_outcome`` is meant to run inside ``pyggml.reference.isolated`` (loads can abort);
``load``/``free`` are the in-process pair the bench uses.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

from .._native import ffi, probe
from ._probe import take_json, take_log

_ERROR = re.compile(r"llama_model_load: error loading model: (.*)")


def load(path: str | os.PathLike[str], *, vocab_only: bool = False, use_mmap: bool = True,
         check_tensors: bool = False, cancel_after: int = -1) -> tuple[Any, dict[str, Any], str]:
    """(model handle or NULL, the probe's JSON, the captured log).  Free with ``free``."""
    lib = probe()
    take_log()
    out = ffi.new("char **")
    handle = lib.ps_model_load(os.fsencode(path), int(vocab_only), int(use_mmap), int(check_tensors),
                               cancel_after, out)
    return handle, take_json(out) or {}, take_log()


def free(handle: Any) -> None:
    if handle != ffi.NULL:
        probe().ps_model_free(handle)


def tensor_sha256(handle: Any, name: str, nbytes: int) -> str | None:
    """sha256 of a tensor's bytes read back from its backend buffer."""
    buf = ffi.new("char[]", max(nbytes, 1))
    if not probe().ps_model_tensor_read(handle, name.encode("utf-8", "surrogateescape"), buf, nbytes):
        return None
    return hashlib.sha256(ffi.buffer(buf, nbytes)).hexdigest()


def error_message(log: str) -> str | None:
    """The text after "error loading model: " in the reference log (the exception's what())."""
    m = _ERROR.search(log)
    return m.group(1).rstrip("\n") if m else None


def load_outcome(path: str, *, vocab_only: bool = False, use_mmap: bool = True,
                 check_tensors: bool = False, cancel_after: int = -1,
                 digests: bool = True) -> dict[str, Any]:
    """The canonical outcome of one load: ``outcome`` ok/error/cancelled, the error message,
    progress values, and on success name, vocab, hparams and tensors (+ sha256 of their bytes)."""
    handle, j, log = load(path, vocab_only=vocab_only, use_mmap=use_mmap, check_tensors=check_tensors,
                          cancel_after=cancel_after)
    try:
        res: dict[str, Any] = {"progress": j.get("progress", [])}
        if handle == ffi.NULL:
            cancelled = "cancelled model load" in log
            res["outcome"] = "cancelled" if cancelled else "error"
            res["message"] = "cancelled model load" if cancelled else error_message(log)
            return res
        res["outcome"] = "ok"
        res["message"] = None
        res["name"] = j.get("name")
        res["vocab"] = j.get("vocab")
        if not vocab_only:
            res["hparams"] = j.get("hparams")
            tensors = []
            for t in j.get("tensors", []):
                entry = {"name": t["name"], "type": t["type"], "ne": t["ne"]}
                if digests:
                    entry["sha256"] = tensor_sha256(handle, t["name"], t["nbytes"])
                tensors.append(entry)
            res["tensors"] = tensors
        return res
    finally:
        free(handle)
