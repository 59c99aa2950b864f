"""Seeded synthetic vocabularies for tests, parity and bench (test data, not runtime code).

``plamo2_gguf()``: a vocab-only PLaMo-2 GGUF.  No real PLaMo-2 vocabulary is available
through the package registries, so this one is SYNTHESIZED, laid out the way the reference's
converter writes pfnet's ``tokenizer.jsonl`` (conversion/base.py ``_set_vocab_plamo``):
``<|plamo:...|>`` control tokens first (unk/bos/eos/pad/op at 0..4), the 256 byte tokens
``<0x00>``..``<0xFF>`` (type BYTE), then scored pieces (English words with and without a
leading space, sub-word pieces, Japanese kana/kanji and words, Cyrillic/Greek/accented
Latin, digits, punctuation runs, whitespace and newline runs, emoji, a few pieces with an
inner space), and ``[PADn]`` UNUSED padding at score -1000.0 as the converter pads to the
model's vocab_size.  Scores fall with rank like a unigram model's log-probabilities, with a
few exact ties.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from ..model.gguf_write import write_gguf

# gguf TokenType
_NORMAL, _UNKNOWN, _CONTROL, _UNUSED, _BYTE = 1, 2, 3, 5, 6

_WORDS = (
    "the of and to in is was for that with on as by at from his her he she it they we you this "
    "are be have has had not but or an which their been were one all would there will can more "
    "when who what so if out up about into than them some could time only new other its people "
    "also may after first two like over such make most year back use work just world good well "
    "day way even because any these give most us hello token tokenizer model language python "
    "function return value class string number list data file code error test example system "
    "llama quick brown fox jumps lazy dog don't it's I'm you're we've they'll café naïve über "
    "straße résumé"
).split()
_JA_WORDS = (
    "日本語 東京 今日 天気 です ます した こんにちは ありがとう テキスト トークン 言語 モデル 学習 "
    "データ 世界 時間 自然 処理 大規模 人工知能 研究 開発 ひらがな カタカナ 漢字 私 あなた これ それ"
).split()
_OTHER = (
    "Ελληνικά και русский текст привет мир Москва αβγ δέλτα 中文 字符 한국어 안녕 हिन्दी العربية"
).split()
_PUNCT = [".", ",", "!", "?", ":", ";", "'", '"', "(", ")", "[", "]", "{", "}", "-", "--", "...",
          "。", "、", "！", "？", "「", "」", "…", "—", "“", "”", "://", "->", "==", "!=", "<=", ">="]
_SPACES = [" ", "  ", "   ", "    ", "        ", "\n", "\n\n", "\n\n\n", "\t", "\t\t", " \n", "\r\n",
           "\u3000"]
_EMOJI = ["🦙", "🙂", "✅", "❤", "🇯🇵", "👍"]
_INNER_SPACE = [" of the", " in the", "e g", "それ は", " to be"]


def synth_plamo2_tokens(seed: int = 0, n_subwords: int = 3000) -> tuple[list[str], list[float], list[int]]:
    """(texts, scores, token types) of the synthetic PLaMo-2 vocabulary."""
    rng = random.Random(seed)
    controls = ["<|plamo:unk|>", "<|plamo:bos|>", "<|plamo:eos|>", "<|plamo:pad|>", "<|plamo:op|>"]
    controls += [f"<|plamo:reserved:{i}|>" for i in range(3)]
    texts: list[str] = list(controls)
    types = [_UNKNOWN] + [_CONTROL] * (len(controls) - 1)
    scores = [0.0] * len(controls)
    for b in range(256):
        texts.append(f"<0x{b:02X}>")
        types.append(_BYTE)
        scores.append(0.0)

    pieces: list[str] = []
    seen = set(texts)

    def add(p: str) -> None:
        if p and p not in seen:
            seen.add(p)
            pieces.append(p)

    for c in range(0x20, 0x7F):
        add(chr(c))
    for w in _WORDS:
        add(w)
        add(" " + w)
        add(w.capitalize())
        add(" " + w.capitalize())
    for p in _PUNCT + _SPACES + _EMOJI + _INNER_SPACE:
        add(p)
    for d in range(100):
        add(str(d))
    for c in list(range(0x3041, 0x3097)) + list(range(0x30A1, 0x30FB)):
        add(chr(c))
    for c in rng.sample(range(0x4E00, 0x9FA6), 800):
        add(chr(c))
    for w in _JA_WORDS + _OTHER:
        add(w)
        add(w[:2])
        add(" " + w)
    for c in "àáâäçèéêëìíîïñòóôöùúûüßÀÉÖÜαβγδεζηθλμπσωабвгдежзиклмнопрстуфхцчшщыэюя":
        add(c)
    # sub-word pieces: random substrings of the words above, a few with a leading space
    source = _WORDS + _JA_WORDS + _OTHER
    for _ in range(n_subwords):
        w = rng.choice(source)
        if len(w) < 2:
            continue
        i = rng.randrange(len(w) - 1)
        j = rng.randrange(i + 2, len(w) + 1)
        add((" " if rng.random() < 0.3 else "") + w[i:j])
    rng.shuffle(pieces)
    # unigram-like scores: falling with rank, noisy, rounded to float32 by the writer; every
    # 50th piece ties its predecessor exactly (the DP's tie rules get exercised)
    prev = -2.0
    for rank, p in enumerate(pieces):
        sc = -math.log(rank + 10.0) - rng.random() * 2.0 - 0.5 * len(p)
        if rank % 50 == 49:
            sc = prev
        prev = sc
        texts.append(p)
        scores.append(sc)
        types.append(_NORMAL)
    for i in range(1, 5):  # the converter's padding up to vocab_size
        texts.append(f"[PAD{i}]")
        scores.append(-1000.0)
        types.append(_UNUSED)
    return texts, scores, types


def write_plamo2_gguf(out: Path, seed: int = 0) -> Path:
    """Write the synthetic PLaMo-2 vocab-only GGUF to ``out`` (with the ``gguf`` package)."""
    texts, scores, types = synth_plamo2_tokens(seed)

    def fill(w: Any) -> None:
        w.add_tokenizer_model("plamo2")
        w.add_tokenizer_pre("default")
        w.add_token_list([t.encode() for t in texts])
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_pad_token_id(3)
        w.add_unk_token_id(0)
        w.add_eot_token_id(4)  # <|plamo:op|>, as the converter sets it
        w.add_add_space_prefix(False)

    # arch "llama": a vocab-only load still reads the arch's hyperparameters, and the
    # tokenizer does not depend on the arch
    return write_gguf(out, "llama", fill, name=f"plamo2-synth-{seed}")


def plamo2_gguf(seed: int = 0) -> Path:
    """The cached synthetic PLaMo-2 vocab (written on first use under the pyggml cache)."""
    from . import corpus

    out = corpus.cache_dir() / "vocabs" / f"ggml-vocab-plamo2-synth-{seed}.gguf"
    if not out.exists():
        write_plamo2_gguf(out, seed)
    return out
