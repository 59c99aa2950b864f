"""The vocabulary: loading from GGUF metadata, special tokens, tokenize and detokenize.

llama.cpp: src/llama-vocab.cpp (llama_vocab::impl::load, tokenizer_st_partition, tokenize,
token_to_piece, detokenize).  Token texts are kept as bytes (GGUF strings are bytes; the
reference compares them byte-wise).
"""

from __future__ import annotations

import functools
import operator
import os
import re
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any

import numpy as np

from ..errors import TokenizerError
from . import bpe, hash_order, hybriddna, plamo2, rwkv, spm, ugm, whitespace, wpm
from . import unicode as U
from .gguf_meta import (
    ARRAY,
    BOOL,
    FLOAT32,
    INT8,
    INT32,
    STRING,
    UINT8,
    UINT32,
    Value,
    metadata_from_gguffile,
    read_metadata,
)
from .pretokenize import PRE_TABLE, PreTokenizer, Splitter

NULL = -1  # LLAMA_TOKEN_NULL

# llama.h enum llama_vocab_type
TYPE_NONE, TYPE_SPM, TYPE_BPE, TYPE_WPM, TYPE_UGM, TYPE_RWKV, TYPE_PLAMO2, TYPE_TEST = range(8)

# llama.h enum llama_token_attr
ATTR_UNDEFINED = 0
ATTR_UNKNOWN = 1 << 0
ATTR_UNUSED = 1 << 1
ATTR_NORMAL = 1 << 2
ATTR_CONTROL = 1 << 3
ATTR_USER_DEFINED = 1 << 4
ATTR_BYTE = 1 << 5
ATTR_NORMALIZED = 1 << 6
ATTR_LSTRIP = 1 << 7
ATTR_RSTRIP = 1 << 8
ATTR_SINGLE_WORD = 1 << 9

# llama.h enum llama_token_type -> attribute (llama.cpp: impl::load)
_TOKTYPE_ATTR = {
    0: ATTR_UNDEFINED,
    1: ATTR_NORMAL,
    2: ATTR_UNKNOWN,
    3: ATTR_CONTROL,
    4: ATTR_USER_DEFINED,
    5: ATTR_UNUSED,
    6: ATTR_BYTE,
}

_K = "tokenizer.ggml."
# llama.cpp: ggml/src/gguf.cpp GGUF_TYPE_NAME (the get_key type error names both types)
_TYPE_NAME = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"]
# special-token keys in the reference's order (later deprecated keys overwrite fim ids)
_SPECIAL_KEYS = [
    ("bos", "bos_token_id"),
    ("eos", "eos_token_id"),
    ("eot", "eot_token_id"),
    ("eom", "eom_token_id"),
    ("unk", "unknown_token_id"),
    ("sep", "seperator_token_id"),
    ("pad", "padding_token_id"),
    ("mask", "mask_token_id"),
    ("fim_pre", "fim_pre_token_id"),
    ("fim_suf", "fim_suf_token_id"),
    ("fim_mid", "fim_mid_token_id"),
    ("fim_pad", "fim_pad_token_id"),
    ("fim_rep", "fim_rep_token_id"),
    ("fim_sep", "fim_sep_token_id"),
    ("fim_pre", "prefix_token_id"),
    ("fim_suf", "suffix_token_id"),
    ("fim_mid", "middle_token_id"),
]

# token texts the reference recognises (llama.cpp: impl::load auto-detection lists)
_EOT_TEXTS = {
    b"<|eot_id|>",
    b"<|im_end|>",
    b"<|end|>",
    b"<end_of_turn>",
    b"<|endoftext|>",
    b"<|end_of_text|>",
    b"<EOT>",
    b"_<EOT>",
    b"[EOT]",
    "<｜end▁of▁sentence｜>".encode(),
    b"<end_of_utterance>",
}
_EOM_TEXTS = {b"<|eom_id|>"}
_FIM_TEXTS = {
    "fim_pre": {
        b"<|fim_prefix|>",
        b"<fim-prefix>",
        b"<fim_prefix>",
        "<｜fim▁begin｜>".encode(),
        b"<PRE>",
        "▁<PRE>".encode(),
        b"<|code_prefix|>",
        b"<|prefix|>",
    },
    "fim_suf": {
        b"<|fim_suffix|>",
        b"<fim-suffix>",
        b"<fim_suffix>",
        "<｜fim▁hole｜>".encode(),
        b"<SUF>",
        "▁<SUF>".encode(),
        b"<|code_suffix|>",
        b"<|suffix|>",
    },
    "fim_mid": {
        b"<|fim_middle|>",
        b"<fim-middle>",
        b"<fim_middle>",
        "<｜fim▁end｜>".encode(),
        b"<MID>",
        "▁<MID>".encode(),
        b"<|code_middle|>",
        b"<|middle|>",
    },
    "fim_pad": {b"<|fim_pad|>", b"<fim-pad>", b"<fim_pad>", b"<PAD>", b"[PAD]"},
    "fim_rep": {b"<|fim_repo|>", b"<|repo_name|>", b"<fim-repo>", b"<REPO>", b"<reponame>"},
    "fim_sep": {b"<|file_sep|>"},
}
_EOG_TEXTS = {
    b"<|eot_id|>",
    b"<|im_end|>",
    b"<|end|>",
    b"<|return|>",
    b"<|call|>",
    b"<|flush|>",
    b"<|calls|>",
    b"<end_of_turn>",
    b"<|endoftext|>",
    b"</s>",
    b"<|eom_id|>",
    b"<EOT>",
    b"_<EOT>",
    b"[EOT]",
    b"[EOS]",
    b"<|end_of_text|>",
    b"<end_of_utterance>",
    b"<eos>",
    b"<turn|>",
    b"<|tool_response>",
    "<｜end▁of▁sentence｜>".encode(),
    b"[e~[",
}
_ALWAYS_USER_DEFINED = {b"<|channel|>", b"<|message|>", b"<|start|>", b"<|constrain|>"}

_CSPACE = frozenset(b" \t\n\v\f\r")  # C isspace in the "C" locale
_ESCAPED_SPACE = "\u2581".encode()


# per-type flag defaults before the GGUF keys override them (llama.cpp: impl::load, the
# branches on the vocab type after the pre-tokenizer table)
_TYPE_DEFAULTS: dict[int, dict[str, bool]] = {
    TYPE_SPM: {"add_space_prefix": True, "clean_spaces": False, "add_bos": True, "add_eos": False},
    TYPE_WPM: {"add_space_prefix": False, "clean_spaces": True, "add_bos": True, "add_eos": False,
               "add_sep": True},
    TYPE_UGM: {"add_bos": False, "add_eos": True},
    TYPE_RWKV: {"add_space_prefix": False, "clean_spaces": False, "add_bos": False, "add_eos": False},
}


class Vocab:
    """A tokenizer vocabulary, loaded like llama.cpp's ``llama_vocab``.

    ``tokenize``/``detokenize``/``token_to_piece`` mirror ``llama_tokenize``,
    ``llama_detokenize`` and ``llama_token_to_piece``.  Invalid token ids raise
    ``TokenizerError`` (the reference throws ``std::out_of_range`` and aborts).
    """

    ATTR_NORMAL = ATTR_NORMAL
    ATTR_USER_DEFINED = ATTR_USER_DEFINED
    ATTR_UNUSED = ATTR_UNUSED

    # --- loading -------------------------------------------------------------------------
    @classmethod
    def from_gguf(cls, source: str | os.PathLike[str] | Any) -> Vocab:
        """Load from a GGUF path or a parsed ``GGUFFile`` (anything with ``.kv``)."""
        if isinstance(source, (str, os.PathLike)):
            meta = read_metadata(source)
        else:
            meta = metadata_from_gguffile(source)
        return cls(meta)

    def __init__(self, meta: dict[str, Value]) -> None:
        self._meta = meta
        self._word_cache: dict[bytes, list[int]] = {}
        self._load()

    def _get(self, key: str, default: Any = None) -> Any:
        v = self._meta.get(key)
        return default if v is None else v.value

    def _str(self, key: str) -> str | None:
        v = self._meta.get(key)
        return None if v is None else v.value.decode("utf-8", "surrogateescape")

    def _key(self, key: str, vtype: int) -> Any:
        """llama_model_loader::get_key of an optional key: its value, None when absent; a
        value of another GGUF type throws, as in the reference (where impl::load reads it)."""
        v = self._meta.get(key)
        if v is None:
            return None
        if v.type != vtype:
            have = _TYPE_NAME[v.type] if 0 <= v.type < len(_TYPE_NAME) else str(v.type)
            raise TokenizerError(f"key {key} has wrong type {have} but expected type {_TYPE_NAME[vtype]}")
        if vtype == STRING:  # read through a C string: a NUL ends it
            return v.value.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        return v.value

    def _load(self) -> None:  # noqa: C901 - mirrors the reference's order of effects
        model = self._key(_K + "model", STRING)
        if model is None:
            raise TokenizerError("key not found in model: tokenizer.ggml.model")
        pre_name = self._key(_K + "pre", STRING) or ""
        self._key(_K + "token_type_count", UINT32)
        self.tokenizer_model = model
        self.tokenizer_pre = pre_name
        self.pre: PreTokenizer = PRE_TABLE["default"]
        sp = {
            "bos": 1,
            "eos": 2,
            "eot": NULL,
            "eom": NULL,
            "unk": 0,
            "sep": NULL,
            "pad": NULL,
            "mask": NULL,
            "fim_pre": NULL,
            "fim_suf": NULL,
            "fim_mid": NULL,
            "fim_pad": NULL,
            "fim_rep": NULL,
            "fim_sep": NULL,
        }
        self.special = sp
        self.linefeed = 13
        self.add_space_prefix = False
        self.add_bos = self.add_eos = self.add_sep = False
        self.ignore_merges = False
        self.clean_spaces = False
        self.remove_extra_whitespaces = False
        self.escape_whitespaces = True
        self.normalizer_lowercase = True  # llama_vocab::normalizer_options defaults
        self.normalizer_strip_accents = True
        self.bpe_ranks: dict[tuple[bytes, bytes], int] = {}
        self.precompiled_charsmap = b""
        self.suppress_tokens: list[int] = []
        self.texts: list[bytes] = []
        self.scores: list[float] = []
        self.attrs: list[int] = []
        self.token_to_id: dict[bytes, int] = {}
        self.eog: set[int] = set()
        self.max_token_len = 0

        def nulls(*names: str) -> None:
            for n in names:
                sp[n] = NULL

        if model in ("no_vocab", "none"):
            self.type = TYPE_NONE
            nulls("bos", "eos", "unk", "sep", "pad", "mask")
            self.linefeed = NULL
            arch = self._str("general.architecture") or ""
            n = self._key(f"{arch}.vocab_size", UINT32)  # LLM_KV_VOCAB_SIZE: "%s.vocab_size" of the arch
            self.texts = [b""] * int(n or 0)
            self.scores = [0.0] * len(self.texts)
            self.attrs = [ATTR_UNDEFINED] * len(self.texts)
            self.special_tokens_cache = []
            self._specials = {True: [], False: []}
            self._special_heads = {True: set(), False: set()}
            return
        if model == "llama":
            self.type = TYPE_SPM
            sp.update(bos=1, eos=2, unk=0)
            nulls("sep", "pad", "mask")
        elif model == "bert":
            self.type = TYPE_WPM
            sp.update(bos=101, eos=NULL, unk=100, sep=102, pad=0, mask=103)
            self.add_sep = True
        elif model in ("gpt2", "hybriddna", "whitespace", "gemma4"):
            self.type = TYPE_BPE
            merges = self._meta.get(_K + "merges")
            if merges is None:
                if not (model == "gpt2" and pre_name == "kimi-k2"):
                    raise TokenizerError("cannot find tokenizer merges in model file")
            else:
                if merges.type != ARRAY or merges.arr_type != STRING:
                    raise TokenizerError(f"invalid gguf type for {_K}merges")
                # "a b" -> (a, b), split at the first space after the first byte (a merge
                # without one is ("", "")); partition is that split unless the word starts
                # with a space or has none
                words = merges.value
                parts = map(bytes.partition, words, repeat(b" "))
                pairs = [(a, c) if sep and a else _merge_pair(w)
                         for w, (a, sep, c) in zip(words, parts, strict=True)]
                # emplace: the first rank of a pair wins (filled from the last)
                self.bpe_ranks = dict(zip(reversed(pairs), range(len(pairs) - 1, -1, -1), strict=True))
            if model == "gemma4":
                nulls("bos", "eos", "unk", "sep", "pad", "mask")
                pre_name = "gemma4"
                self.tokenizer_pre = pre_name
            else:
                sp.update(bos=11, eos=11)
                nulls("unk", "sep", "pad", "mask")
        elif model == "t5":
            self.type = TYPE_UGM
            sp.update(bos=NULL, eos=1, unk=2, sep=NULL, pad=0, mask=NULL)
            pc = self._meta.get(_K + "precompiled_charsmap")
            if pc is not None:
                if pc.type != ARRAY or pc.arr_type not in (INT8, UINT8):
                    raise TokenizerError(f"invalid gguf type for {_K}precompiled_charsmap")
                data = pc.value.astype("u1").tobytes()
                if len(data) < 4:
                    raise TokenizerError("precompiled_charsmap too small for xcda_blob_size header!")
                blob = int.from_bytes(data[:4], "little")
                if blob + 4 >= len(data):
                    raise TokenizerError("Index out of array bounds in precompiled charsmap!")
                self.precompiled_charsmap = data
        elif model == "rwkv":
            self.type = TYPE_RWKV
            nulls("bos", "eos", "unk", "sep", "pad")
        elif model == "plamo2":
            self.type = TYPE_PLAMO2
            sp.update(bos=1, eos=2, unk=0, pad=3)  # <|plamo:bos|>, <|plamo:eos|>, <|plamo:unk|>, pad
            nulls("sep", "mask")
        elif model == "test":
            # LLAMA_VOCAB_TYPE_TEST: ids from a hash of 5-byte chunks, pieces the hex id
            self.type = TYPE_TEST
            nulls("bos", "eos", "unk", "sep", "pad", "mask")
        else:
            raise TokenizerError(f"unknown tokenizer: '{_shown(model)}'")

        if self.type == TYPE_BPE:
            self.add_space_prefix = False
            self.escape_whitespaces = False
            self.clean_spaces = True
            if pre_name == "":
                pre = PRE_TABLE["default"]
            elif pre_name in PRE_TABLE:
                pre = PRE_TABLE[pre_name]
            else:
                raise TokenizerError(f"unknown pre-tokenizer type: '{_shown(pre_name)}'")
            self.pre = pre
            for flag in ("ignore_merges", "clean_spaces", "add_bos", "add_sep", "escape_whitespaces"):
                v = getattr(pre, flag)
                if v is not None:
                    setattr(self, flag, v)
            if pre.bos_null:
                sp["bos"] = NULL
            if pre.lowercase is not None:
                self.normalizer_lowercase = pre.lowercase
        else:
            for attr, value in _TYPE_DEFAULTS.get(self.type, {}).items():
                setattr(self, attr, value)
        for flag in ("add_space_prefix", "remove_extra_whitespaces"):
            v = self._key(_K + flag, BOOL)
            if v is not None:
                setattr(self, flag, bool(v))

        toks = self._meta.get(_K + "tokens")
        if toks is None:
            raise TokenizerError("cannot find tokenizer vocab in model file")
        if toks.type != ARRAY or toks.arr_type != STRING:
            raise TokenizerError(f"invalid gguf type for {_K}tokens")
        words: list[bytes] = toks.value
        if b"\0" in b"".join(words):  # each token is read through a C string: a NUL ends it
            words = [w.split(b"\0", 1)[0] for w in words]
        n_tokens = len(words)
        scores_v = self._meta.get(_K + "scores")
        scores: list[float] | None = None
        if scores_v is not None:
            if scores_v.type != ARRAY or scores_v.arr_type not in (INT32, FLOAT32):
                raise TokenizerError(f"invalid gguf type for {_K}scores")
            if len(scores_v.value) < n_tokens:
                raise TokenizerError(
                    f"Index out of array bounds for scores ({len(scores_v.value)} < {n_tokens})"
                )
            scores = scores_v.value[:n_tokens].astype("f4").astype("f8").tolist()
        tt = self._meta.get(_K + "token_type")
        toktypes: list[int] | None = None
        if tt is not None:
            if tt.type != ARRAY or tt.arr_type != INT32:
                raise TokenizerError(f"invalid gguf type for {_K}token_type")
            if len(tt.value) < n_tokens:
                raise TokenizerError(f"Index out of array bounds for toktypes ({len(tt.value)} < {n_tokens})")
            toktypes = tt.value[:n_tokens].tolist()
        texts = list(words)
        if not all(texts):  # the reference names empty tokens (impl::load)
            texts = [w if w else f"[EMPTY_{i}]".encode() for i, w in enumerate(texts)]
        self.texts = texts
        self.token_to_id = dict(zip(texts, range(n_tokens), strict=True))
        if len(self.token_to_id) != n_tokens:
            raise TokenizerError(
                "duplicate token texts: the reference aborts "
                "(GGML_ASSERT id_to_token.size() == token_to_id.size())"
            )
        self.max_token_len = max(map(len, texts), default=0)
        self.scores = scores if scores is not None else [0.0] * n_tokens
        if toktypes is None:
            self.attrs = [ATTR_NORMAL] * n_tokens
        else:
            tt_arr = np.asarray(toktypes, dtype=np.int64)
            known = (tt_arr >= 0) & (tt_arr < len(_TOKTYPE_ATTR))
            table = np.array([_TOKTYPE_ATTR[k] for k in range(len(_TOKTYPE_ATTR))], dtype=np.int64)
            self.attrs = np.where(known, table[np.where(known, tt_arr, 0)], ATTR_UNDEFINED).tolist()

        if model == "hybriddna":
            hybriddna.strip_kmer_marker(self.texts, self.token_to_id)
        self.special_tokens_cache: list[int] = []  # empty while the newline token is looked up
        self._specials: dict[bool, list[tuple[int, bytes, int]]] = {True: [], False: []}
        self._special_heads: dict[bool, set[int]] = {True: set(), False: set()}
        self._init_tokenizer()

        # newline token (llama.cpp: impl::load "determine the newline token")
        if self.type == TYPE_SPM:
            try:
                self.linefeed = self.byte_to_token(0x0A)
            except TokenizerError:
                self.linefeed = sp["pad"]
        elif self.type == TYPE_WPM:
            self.linefeed = sp["pad"]
        elif self.type == TYPE_RWKV:
            ids = self.tokenize(b"\n", add_special=False)
            if not ids:
                raise TokenizerError("model vocab missing newline token (the reference aborts)")
            self.linefeed = ids[0]
        else:
            ids = self.tokenize(b"\n", add_special=False)
            self.linefeed = ids[0] if ids else sp["pad"]

        n = n_tokens
        for name, key in _SPECIAL_KEYS:
            if sp[name] >= 0 and sp[name] >= n:
                sp[name] = NULL
            new = self._key(_K + key, UINT32)
            if new is None:
                continue
            new = int(new) & 0xFFFFFFFF
            if new < n:
                sp[name] = new

        for flag, key in (
            ("add_bos", "add_bos_token"),
            ("add_eos", "add_eos_token"),
            ("add_sep", "add_sep_token"),
        ):
            v = self._key(_K + key, BOOL)
            if v is not None:
                setattr(self, flag, bool(v))
        if self.pre.pre_type == "GEMMA4" and not self.add_bos:
            self.add_bos = True
        v = self._key(_K + "normalizer.lowercase", BOOL)
        if v is not None:
            self.normalizer_lowercase = bool(v)
        self.normalizer_strip_accents = self.normalizer_lowercase
        v = self._key(_K + "normalizer.strip_accents", BOOL)
        if v is not None:
            self.normalizer_strip_accents = bool(v)
        sup = self._meta.get(_K + "suppress_tokens")
        if sup is not None:
            if sup.type != ARRAY or sup.arr_type != INT32:
                raise TokenizerError(f"invalid gguf type for {_K}suppress_tokens")
            self.suppress_tokens = [int(i) for i in sup.value.tolist() if 0 <= i < n]

        self._detect_specials()
        self._build_caches()
        self._per_model_attrs()
        # partition order and the attributes it reads, fixed from here on
        every = [(i, self.texts[i], self.attrs[i]) for i in self.special_tokens_cache]
        self._specials = {True: every, False: [e for e in every if not e[2] & (ATTR_CONTROL | ATTR_UNKNOWN)]}
        self._special_heads = {k: {e[1][0] for e in v} for k, v in self._specials.items()}
        # the newline lookup above ran before the special ids were final: drop what it cached
        self._word_cache.clear()
        # the reference fills its piece cache here (every token, special=true), ours on first
        # use: a byte token whose piece aborts there (token_to_byte of a WPM vocab) aborts the load
        for i in np.flatnonzero(np.asarray(self.attrs, dtype=np.int64) & ATTR_BYTE).tolist():
            self._piece_uncached(i)

    def _init_tokenizer(self) -> None:
        self._spm_splittable = self.type == TYPE_SPM and spm.splittable(self.texts)
        if self.type == TYPE_BPE:
            self.splitter = Splitter(list(self.pre.regexes), self.pre.byte_encode)
        elif self.type == TYPE_UGM:
            self._ugm = ugm.UGMModel(self)
        elif self.type == TYPE_RWKV:
            self._rwkv = rwkv.RWKVModel(self)
        elif self.type == TYPE_PLAMO2:
            self._plamo2 = plamo2.PLaMo2Model(self)

    def _detect_specials(self) -> None:
        """EOT/EOM/FIM auto-detection, unused marking and the EOG set (llama.cpp: impl::load).

        The reference walks its ``unordered_map`` token_to_id; when a vocabulary holds several
        candidate texts for one slot, the first one in libstdc++ hash order wins (and only it is
        marked CONTROL).  ``hash_order`` reproduces that order; without libstdc++ we take the
        lowest id."""
        sp = self.special
        attrs = self.attrs
        t2id = self.token_to_id
        position: dict[int, int] | None = None

        def mark_control(i: int) -> None:
            attrs[i] |= ATTR_CONTROL

        def detect(slot: str, texts: set[bytes]) -> None:
            nonlocal position
            if sp[slot] != NULL:
                return
            cands = sorted(t2id[t] for t in texts if t in t2id)
            if not cands:
                return
            if len(cands) > 1 and hash_order.available():
                if position is None:
                    order = hash_order.iteration_order(self.texts)
                    position = {}
                    wanted = {
                        t2id[t]
                        for group in (_EOT_TEXTS, _EOM_TEXTS, *_FIM_TEXTS.values())
                        for t in group
                        if t in t2id
                    }
                    for pos, tok in enumerate(order.tolist()):
                        if tok in wanted:
                            position[tok] = pos
                cands.sort(key=lambda i: position[i])  # type: ignore[index]
            sp[slot] = cands[0]
            mark_control(cands[0])

        detect("eot", _EOT_TEXTS)
        detect("eom", _EOM_TEXTS)
        for slot, texts in _FIM_TEXTS.items():
            detect(slot, texts)

        arr = np.asarray(attrs, dtype=np.int64)
        for i in np.flatnonzero((arr & ATTR_CONTROL != 0) & (arr & ATTR_UNUSED == 0)).tolist():
            if b"unused" in self.texts[i]:
                attrs[i] |= ATTR_UNUSED

        eog: set[int] = set()
        for slot in ("fim_pad", "fim_rep", "fim_sep"):
            if sp[slot] != NULL:
                eog.add(sp[slot])
        for t in _EOG_TEXTS:
            i = t2id.get(t)
            if i is not None:
                eog.add(i)
                mark_control(i)
        for t in _ALWAYS_USER_DEFINED:
            i = t2id.get(t)
            if i is not None:
                attrs[i] = ATTR_USER_DEFINED
        for slot in ("eos", "eot", "eom"):
            if sp[slot] != NULL:
                eog.add(sp[slot])
        n = len(self.texts)
        in_range = [i for i in eog if 0 <= i < n]
        texts_in = {self.texts[i]: i for i in in_range}
        has_return = b"<|return|>" in texts_in
        has_call = b"<|call|>" in texts_in or b"<|calls|>" in texts_in
        has_flush = b"<|flush|>" in texts_in
        end_id = texts_in.get(b"<|end|>")
        if end_id is not None and ((has_return and has_call) or (has_call and has_flush)):
            eog.discard(end_id)
            attrs[end_id] = ATTR_USER_DEFINED
        in_range = [i for i in eog if 0 <= i < n]
        texts_in = {self.texts[i]: i for i in in_range}
        s_id = texts_in.get(b"</s>")
        if s_id is not None and (b"<|tool_response>" in texts_in or b"<|plamo:eos|>" in texts_in):
            eog.discard(s_id)
            attrs[s_id] = ATTR_NORMAL
        self.eog = eog

    def _build_caches(self) -> None:
        attrs = self.attrs
        mask = ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN
        ids = np.flatnonzero(np.asarray(attrs, dtype=np.int64) & mask).tolist()
        # std::sort by length, descending: not stable, so the order among equal lengths is
        # whatever libstdc++'s introsort leaves; replayed exactly.
        from .._stlsort import std_sort

        lengths = list(map(float, map(len, self.texts)))
        ids = std_sort(lengths, ids)
        self.special_tokens_cache = ids
        # the reference fills its piece cache at load; we fill ours on first use (same values:
        # attributes never change after this point except LSTRIP/RSTRIP, which pieces ignore)
        self._pieces: dict[int, bytes] = {}
        self._tables: tuple[list[bytes], list[bytes]] | None = None

    def _per_model_attrs(self) -> None:
        t2id = self.token_to_id
        name = (self._str("general.name") or "").encode("utf-8", "surrogateescape").lower()
        pre = self._str(_K + "pre") or ""
        arch = self._str("general.architecture") or ""
        if any(s in pre for s in ("jina-v2-de", "jina-v2-es", "jina-v2-code")) or any(
            s in arch for s in ("nomic-bert-moe", "jina-bert-v3")
        ):
            if b"<mask>" in t2id:
                self.attrs[t2id[b"<mask>"]] |= ATTR_LSTRIP
        elif b"phi-3" in name or b"phi3" in name:
            for i in self.special_tokens_cache:
                self.attrs[i] |= ATTR_RSTRIP
            for t, on in ((b"</s>", True), (b"<unk>", False), (b"<s>", False), (b"<|endoftext|>", False)):
                if t not in t2id:
                    raise TokenizerError(
                        f"phi-3 vocabulary lacks {t!r}: the reference throws std::out_of_range"
                    )
                if on:
                    self.attrs[t2id[t]] |= ATTR_RSTRIP
                else:
                    self.attrs[t2id[t]] &= ~ATTR_RSTRIP
        elif b"modern-bert" in name:
            if b"[MASK]" in t2id:
                self.attrs[t2id[b"[MASK]"]] |= ATTR_LSTRIP

    # --- queries ---------------------------------------------------------------------------
    @property
    def n_tokens(self) -> int:
        return len(self.texts)

    @property
    def bos(self) -> int:
        """Beginning-of-sequence token id, -1 for none (llama_vocab_bos)."""
        return self.special["bos"]

    @property
    def eos(self) -> int:
        """End-of-sequence token id, -1 for none (llama_vocab_eos)."""
        return self.special["eos"]

    @property
    def eot(self) -> int:
        """End-of-turn token id, -1 for none (llama_vocab_eot)."""
        return self.special["eot"]

    def _check(self, token: int) -> None:
        # llama_vocab's token getters (text, score, attr; token_to_piece through the attr)
        # GGML_ASSERT that the vocabulary has a type
        if self.type == TYPE_NONE:
            raise TokenizerError("vocabulary of type NONE has no token data (the reference aborts)")
        if not 0 <= token < len(self.texts):
            raise TokenizerError(
                f"invalid token id {token} (vocabulary has {len(self.texts)} tokens); "
                "the reference throws std::out_of_range"
            )

    def text(self, token: int) -> bytes:
        self._check(token)
        return self.texts[token]

    def score(self, token: int) -> float:
        self._check(token)
        return self.scores[token]

    def attr(self, token: int) -> int:
        self._check(token)
        return self.attrs[token]

    def is_eog(self, token: int) -> bool:
        return token != NULL and token in self.eog

    def byte_to_token(self, ch: int) -> int:
        """llama.cpp: llama_vocab::byte_to_token."""
        t2id = self.token_to_id
        if self.type in (TYPE_SPM, TYPE_UGM):
            t = t2id.get(f"<0x{ch:02X}>".encode())
            if t is not None:
                return t
            t = t2id.get(bytes([ch]))
        elif self.type in (TYPE_WPM, TYPE_BPE):
            t = t2id.get(U.byte_to_unicode()[ch].encode())
        elif self.type == TYPE_PLAMO2:
            t = t2id.get(f"<0x{ch:02X}>".encode())
        elif self.type == TYPE_TEST:
            return NULL  # no byte mapping for this type, and no throw either
        else:
            t = None
        if t is None:
            raise TokenizerError(f"no token for byte 0x{ch:02X}: the reference throws std::out_of_range")
        return t

    # --- tokenize ------------------------------------------------------------------------------
    def _partition(self, text: bytes, parse_special: bool,
                   plain: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int] | int]:
        """llama.cpp: impl::tokenizer_st_partition -> fragments: (offset, length) or a token id.

        ``plain``: byte ranges [start, end) read as with ``parse_special=False`` (pyggml's input
        marking; the reference has no such parameter)."""
        frags: list[tuple[int, int] | int] = [(0, len(text))]
        specials = self._specials[parse_special]
        if not specials or (len(text) < 4096 and not self._special_heads[parse_special].intersection(text)):
            return frags
        for sid, tok, a in specials:
            if tok not in text:  # cannot occur in any fragment either
                continue
            gated = bool(plain) and a & (ATTR_CONTROL | ATTR_UNKNOWN)  # parse_special gates it
            new: list[tuple[int, int] | int] = []
            for f in frags:
                if not isinstance(f, tuple):
                    new.append(f)
                    continue
                base, length = f
                while True:
                    match = text.find(tok, base, base + length)
                    if gated:
                        while match != -1 and any(a0 < match + len(tok) and match < a1 for a0, a1 in plain):
                            match = text.find(tok, match + 1, base + length)
                    if match == -1:
                        new.append((base, length))
                        break
                    if match > base:
                        left_len = match - base
                        if a & ATTR_LSTRIP:
                            while left_len > 0 and text[base + left_len - 1] in _CSPACE:
                                left_len -= 1
                        if left_len > 0:
                            new.append((base, left_len))
                    new.append(sid)
                    end = match + len(tok)
                    if end < base + length:
                        r_off = end
                        r_len = base + length - end
                        if a & ATTR_RSTRIP:
                            while r_len > 0 and text[r_off] in _CSPACE:
                                r_off += 1
                                r_len -= 1
                        if r_len == 0:
                            break
                        base, length = r_off, r_len
                    else:
                        break
            frags = new
        return frags

    def tokenize_parts(self, parts: Iterable[tuple[str, bool]], add_special: bool = True) -> list[int]:
        """Token ids of a rendered chat given as ``(text, is_input)`` pairs (``Rendered.mask()``).

        Special tokens are parsed in template text but never inside input: a user message that
        contains ``<|im_end|>`` stays plain text.  Equal to ``tokenize(text, add_special,
        parse_special=True)`` wherever no input part spells a control token."""
        chunks: list[bytes] = []
        plain: list[tuple[int, int]] = []
        pos = 0
        for text, is_input in parts:
            b = text.encode("utf-8", "surrogatepass")
            if is_input and b:
                plain.append((pos, pos + len(b)))
            chunks.append(b)
            pos += len(b)
        return self.tokenize(b"".join(chunks), add_special, parse_special=True, _plain=plain)

    def tokenize(self, text: str | bytes, add_special: bool = True, parse_special: bool = False,
                 *, _plain: Sequence[tuple[int, int]] = ()) -> list[int]:
        """Token ids of ``text`` (llama_tokenize).  ``bytes`` are taken as they are (invalid
        UTF-8 included); ``str`` is encoded as UTF-8 (lone surrogates pass through)."""
        data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
        if self.type == TYPE_NONE:
            raise TokenizerError("vocabulary of type NONE cannot tokenize (the reference aborts)")
        frags = self._partition(data, parse_special, _plain) if data else []
        out: list[int] = []
        t = self.type
        if t == TYPE_SPM:
            prev_special = True
            if add_special and self.add_bos:
                self._append_special(out, "bos")
            for f in frags:
                if isinstance(f, tuple):
                    piece = data[f[0] : f[0] + f[1]]
                    if self.add_space_prefix and prev_special:
                        piece = b" " + piece
                    spm.tokenize(self, piece.replace(b" ", _ESCAPED_SPACE), out)
                    prev_special = False
                else:
                    out.append(f)
                    prev_special = True
            if add_special and self.add_eos:
                self._append_special(out, "eos")
        elif t == TYPE_BPE:
            # llama.cpp: impl::tokenize picks the BPE session by tokenizer model name
            session = _BPE_SESSIONS.get(self.tokenizer_model, bpe.tokenize)
            if add_special and self.add_bos:
                self._append_special(out, "bos")
            for f in frags:
                if isinstance(f, tuple):
                    piece = data[f[0] : f[0] + f[1]]
                    if self.escape_whitespaces:
                        piece = piece.replace(b" ", _ESCAPED_SPACE)
                    try:
                        session(self, piece, out)
                    except U.InvalidCodepoint as e:
                        raise TokenizerError(str(e)) from None
                else:
                    out.append(f)
            if add_special and self.add_eos:
                self._append_special(out, "eos")
        elif t == TYPE_WPM:
            if add_special:
                self._append_special(out, "bos")
            for f in frags:
                if isinstance(f, tuple):
                    try:
                        wpm.tokenize(self, data[f[0] : f[0] + f[1]], out)
                    except U.InvalidCodepoint as e:
                        raise TokenizerError(str(e)) from None
                else:
                    out.append(f)
            if add_special:
                self._append_special(out, "sep")
        elif t == TYPE_RWKV:
            for f in frags:
                if isinstance(f, tuple):
                    rwkv.tokenize(self, data[f[0] : f[0] + f[1]], out)
                else:
                    out.append(f)
        elif t == TYPE_PLAMO2:  # no BOS/EOS for this type, whatever add_bos says
            for f in frags:
                if isinstance(f, tuple):
                    plamo2.tokenize(self, data[f[0] : f[0] + f[1]], out)
                else:
                    out.append(f)
        elif t == TYPE_UGM:
            if add_special and self.add_bos:
                self._append_special(out, "bos")
            for f in frags:
                if isinstance(f, tuple):
                    ugm.tokenize(self, data[f[0] : f[0] + f[1]], out)
                else:
                    out.append(f)
            if add_special and self.add_eos:
                self._append_special(out, "eos")
        elif t == TYPE_TEST:  # no BOS/EOS whatever add_special says
            _tokenize_test(data, frags, len(self.texts), out)
        return out

    def _append_special(self, out: list[int], name: str) -> None:
        """Append special token ``name`` (bos/eos/sep); the reference asserts it is not NULL."""
        tok = self.special[name]
        if tok == NULL:
            raise TokenizerError(f"special token {name} is NULL: the reference aborts (GGML_ASSERT)")
        out.append(tok)

    # --- detokenize -----------------------------------------------------------------------------
    def _piece_uncached(self, token: int) -> bytes:
        """llama.cpp: impl::token_to_piece without the cache, special=true (builds the cache)."""
        a = self.attrs[token]
        text = self.texts[token]
        t = self.type
        if t == TYPE_TEST:  # the id in lowercase hex, whatever the attributes
            return b"%x" % token
        if t == TYPE_RWKV:
            return rwkv.unescape(text)  # no attribute rules for RWKV pieces
        if t == TYPE_PLAMO2:
            # llama.cpp: impl::token_to_piece, PLAMO2 case: a parsable <0xXX> byte token is its
            # byte, anything else (control tokens included) its text
            if a & ATTR_BYTE:
                b = plamo2.byte_value(text)
                if b is not None:
                    return bytes([b])
            return text
        if a & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED):
            return text
        if t in (TYPE_WPM, TYPE_SPM, TYPE_UGM) or (t == TYPE_BPE and self.escape_whitespaces):
            if a & ATTR_NORMAL:
                return text.replace(_ESCAPED_SPACE, b" ")
        elif t == TYPE_BPE and a & ATTR_NORMAL:
            return _decode_gpt2(text)
        if a & ATTR_BYTE:
            if t == TYPE_WPM:
                raise TokenizerError("byte token in a WPM vocabulary: the reference aborts")
            return bytes([_strtol_hex(text[3:5])])
        return b""

    def _piece_table(self, special: bool) -> list[bytes]:
        """Every token's piece (built on first use), with control/unknown ones emptied unless
        ``special``: the reference's piece cache plus its ``special`` check."""
        if self._tables is None:
            full = [self._pieces.get(i) or self._piece_uncached(i) for i in range(len(self.texts))]
            hide = ATTR_UNKNOWN | ATTR_CONTROL
            plain = [b"" if a & hide else p for p, a in zip(full, self.attrs, strict=True)]
            self._tables = (plain, full)
        return self._tables[int(special)]

    def token_to_piece(self, token: int, lstrip: int = 0, special: bool = False) -> bytes:
        """The bytes of one token (llama_token_to_piece).  Control and unknown tokens give
        ``b""`` unless ``special``; up to ``lstrip`` leading spaces are removed."""
        self._check(token)
        if not special and self.attrs[token] & (ATTR_UNKNOWN | ATTR_CONTROL):
            return b""
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self._piece_uncached(token)
        i = 0
        while i < lstrip and i < len(piece) and piece[i] == 0x20:
            i += 1
        return piece[i:]

    def detokenize_bytes(
        self, tokens: Sequence[int], remove_special: bool = False, unparse_special: bool = False
    ) -> bytes:
        """llama_detokenize's bytes (with a large enough buffer)."""
        if self.type == TYPE_NONE:
            return b""
        toks = tokens if isinstance(tokens, list) else list(tokens)
        if not toks:
            return b""
        if min(toks) < 0:
            self._check(min(toks))
        remove_space = self.add_space_prefix
        sp = self.special
        if remove_special and self.add_bos and toks[0] == sp["bos"]:
            remove_space = False
            toks = toks[1:]
        if remove_special and self.add_eos and toks and toks[-1] == sp["eos"]:
            toks = toks[:-1]
        if not toks:
            return b""
        table = self._piece_table(unparse_special)
        try:
            head = self.token_to_piece(toks[0], int(remove_space), unparse_special)
            if len(toks) > 2:  # itemgetter: one C call for the whole lookup
                text = head + b"".join(operator.itemgetter(*toks[1:])(table))
            else:
                text = head + b"".join(map(table.__getitem__, toks[1:]))
        except IndexError:
            self._check(max(toks))
            raise
        if self.clean_spaces and text:
            text = _clean_spaces(text)
        return text

    def detokenize(
        self, tokens: Sequence[int], remove_special: bool = False, unparse_special: bool = False
    ) -> str:
        """Text of ``tokens`` (llama_detokenize); bytes that are not UTF-8 become U+FFFD."""
        return self.detokenize_bytes(tokens, remove_special, unparse_special).decode("utf-8", "replace")


_BPE_SESSIONS = {"hybriddna": hybriddna.tokenize, "whitespace": whitespace.tokenize}


_TEST_POWERS = np.array([31**4, 31**3, 31**2, 31, 1], dtype=np.int64)


def _tokenize_test(data: bytes, frags: list[tuple[int, int] | int], n_vocab: int, out: list[int]) -> None:
    """llama.cpp: impl::tokenize, LLAMA_VOCAB_TYPE_TEST: each 5-byte chunk of a raw fragment
    becomes ``hash % n_vocab`` (hash = hash*31 + byte, in uint64)."""
    for f in frags:
        if not isinstance(f, tuple):
            out.append(f)
            continue
        if n_vocab == 0:
            raise TokenizerError("TEST vocabulary without tokens: the reference divides by zero")
        start, length = f
        full = length - length % 5
        if full:  # 5 bytes never overflow the uint64 hash: one dot product per chunk
            chunks = np.frombuffer(data, np.uint8, full, start).reshape(-1, 5).astype(np.int64)
            out.extend((chunks @ _TEST_POWERS % n_vocab).tolist())
        if full < length:
            h = 0
            for b in data[start + full : start + length]:
                h = h * 31 + b
            out.append(h % n_vocab)


def _strtol_hex(b: bytes) -> int:
    """strtol(.., 16) of the two chars after '<0x' (stops at the first non-hex char)."""
    v = 0
    for ch in b:
        d = int(chr(ch), 16) if chr(ch) in "0123456789abcdefABCDEF" else -1
        if d < 0:
            break
        v = v * 16 + d
    return v & 0xFF


def _merge_pair(word: bytes) -> tuple[bytes, bytes]:
    pos = word.find(b" ", 1)
    return (word[:pos], word[pos + 1 :]) if pos != -1 else (b"", b"")


def _shown(s: str) -> str:
    """A metadata string as the reference's message shows it (invalid UTF-8 as U+FFFD)."""
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _decode_gpt2(text: bytes) -> bytes:
    """llama.cpp: llama_decode_text (GPT-2 stand-ins back to bytes)."""
    try:
        mapped = text.decode("utf-8").translate(_gpt2_table())
        if max(mapped, default="\0") < "\u0100":
            return mapped.encode("latin-1")
    except UnicodeDecodeError:
        pass
    u2b = U.unicode_to_byte()
    out = bytearray()
    for c in U.cpts_from_utf8(text):
        ch = chr(c)
        b = u2b.get(ch)
        if b is not None:
            out.append(b)
        else:
            utf8 = ch.encode("utf-8", "surrogatepass")
            out += b"[UNK_BYTE_0x" + utf8.hex().encode() + text + b"]"
    return bytes(out)


@functools.cache
def _gpt2_table() -> dict[int, int]:
    """str.translate table: GPT-2 stand-in -> its byte; any other char below U+0100 -> U+FFFF
    (so that the fast path sees it is not a stand-in)."""
    table = {c: 0xFFFF for c in range(256)}
    for ch, b in U.unicode_to_byte().items():
        table[ord(ch)] = b
    return table


_CLEAN_1 = re.compile(rb" (?=[?!.,])")
_CLEAN_2 = re.compile(rb" ' ")
_CLEAN_3 = re.compile(rb" (?='[sm]|'re|'ve)")


def _clean_spaces(buf: bytes) -> bytes:
    """llama.cpp: impl::detokenize clean_spaces, its three in-place passes as substitutions.

    Each pass reads the bytes the previous pass left (the in-place writes never land on a
    position a later step of the same pass reads, except pass 2's zeroed space, which is
    exactly a non-overlapping left-to-right match)."""
    buf = _CLEAN_1.sub(b"", buf)        # " ?", " !", " .", " ,"
    buf = _CLEAN_2.sub(b"'", buf)       # " ' " -> "'"
    return _CLEAN_3.sub(b"", buf)       # " 's", " 'm", " 're", " 've"
