"""The reference tokenizer (libllama's public vocab API) on a vocab-only model load.

Never pass an invalid token id here: the reference throws ``std::out_of_range`` across the C
boundary and the process aborts (run such calls through ``pyggml.reference.isolated``).
"""

from __future__ import annotations

import os
from typing import Any

from .._native import ffi, llama, probe
from ._probe import take_json, take_log


class RefVocab:
    """A vocab-only ``llama_model`` and its ``llama_vocab``; ``close()`` frees it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        lib = probe()
        take_log()
        out = ffi.new("char **")
        self._model = lib.ps_model_load(os.fsencode(path), 1, 1, 0, -1, out)
        take_json(out)
        log = take_log()
        if self._model == ffi.NULL:
            raise RuntimeError(f"the reference could not load {path}: {log[-500:]}")
        self.lib = llama()
        self.vocab = self.lib.llama_model_get_vocab(self._model)
        self.n_tokens = int(self.lib.llama_vocab_n_tokens(self.vocab))
        self._buf = ffi.new("llama_token[]", 4096)
        self._cbuf = ffi.new("char[]", 1 << 16)

    def close(self) -> None:
        if self._model is not None and self._model != ffi.NULL:
            probe().ps_model_free(self._model)
        self._model = None

    def __enter__(self) -> RefVocab:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def tokenize(self, text: bytes, add_special: bool, parse_special: bool) -> list[int]:
        lib = self.lib
        n = lib.llama_tokenize(
            self.vocab, text, len(text), self._buf, len(self._buf), add_special, parse_special
        )
        if n < 0:
            self._buf = ffi.new("llama_token[]", -n + 16)
            n = lib.llama_tokenize(
                self.vocab, text, len(text), self._buf, len(self._buf), add_special, parse_special
            )
        return list(self._buf[0:n])

    def token_to_piece(self, token: int, lstrip: int = 0, special: bool = False) -> bytes:
        n = self.lib.llama_token_to_piece(self.vocab, token, self._cbuf, len(self._cbuf), lstrip, special)
        if n < 0:
            self._cbuf = ffi.new("char[]", -n + 16)
            n = self.lib.llama_token_to_piece(self.vocab, token, self._cbuf, len(self._cbuf), lstrip, special)
        return bytes(ffi.buffer(self._cbuf, n))

    def detokenize(
        self, tokens: list[int], remove_special: bool = False, unparse_special: bool = False
    ) -> bytes:
        arr = ffi.new("llama_token[]", tokens) if tokens else ffi.new("llama_token[]", 1)
        n = self.lib.llama_detokenize(
            self.vocab, arr, len(tokens), self._cbuf, len(self._cbuf), remove_special, unparse_special
        )
        if n < 0:
            self._cbuf = ffi.new("char[]", -n + 16)
            n = self.lib.llama_detokenize(
                self.vocab, arr, len(tokens), self._cbuf, len(self._cbuf), remove_special, unparse_special
            )
        return bytes(ffi.buffer(self._cbuf, n))

    def info(self) -> dict[str, Any]:
        """Type, special ids, add_* flags, every token's text/score/attr and the EOG set."""
        lib, v = self.lib, self.vocab
        res: dict[str, Any] = {"type": int(lib.llama_vocab_type(v)), "n_tokens": self.n_tokens}
        for name in (
            "bos",
            "eos",
            "eot",
            "sep",
            "nl",
            "pad",
            "mask",
            "fim_pre",
            "fim_suf",
            "fim_mid",
            "fim_pad",
            "fim_rep",
            "fim_sep",
        ):
            res[name] = int(getattr(lib, f"llama_vocab_{name}")(v))
        for name in ("add_bos", "add_eos", "add_sep"):
            res[name] = bool(getattr(lib, f"llama_vocab_get_{name}")(v))
        res["attrs"] = [int(lib.llama_vocab_get_attr(v, i)) for i in range(self.n_tokens)]
        res["eog"] = [i for i in range(self.n_tokens) if lib.llama_vocab_is_eog(v, i)]
        return res

    def texts(self) -> list[bytes]:
        lib, v = self.lib, self.vocab
        return [ffi.string(lib.llama_vocab_get_text(v, i)) for i in range(self.n_tokens)]
