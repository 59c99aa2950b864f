"""Parity of the tokenizers (pyggml.vocab) against the reference's llama_tokenize & co.

Per vocabulary (every ``ggml-vocab-*.gguf`` of the reference tree, plus SmolLM2 with --full):
load-time state (type, special ids, add_* flags, every token's attribute, the EOG set), then
for each text of the reference's own ``.inp`` file, a built-in corpus and a seeded random
corpus (unicode soup, whitespace runs, embedded special-token texts, invalid UTF-8): the ids
for all four add_special/parse_special combinations, and the detokenized bytes of those ids
for all four remove_special/unparse_special combinations.  Single-token pieces are compared
for a sample of ids (all ids with --full).  Where our side raises (the reference would abort),
the reference runs in ``pyggml.reference.isolated`` and must die too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import TokenizerError
from . import Case, Options, corpus

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
        elif kind == 3:  # invalid UTF-8: random bytes, lead bytes F4..F7 left out (they can
            # decode above U+10FFFF, where the reference throws out of llama_tokenize)
            s = bytes(
                rng.choice([b for b in range(256) if not 0xF4 <= b <= 0xF7])
                for _ in range(rng.randrange(1, 24))
            )
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


def _ours_tokenize(v: Any, text: bytes, add: bool, parse: bool) -> Any:
    try:
        return v.tokenize(text, add_special=add, parse_special=parse)
    except TokenizerError:
        return "aborted"


RWKV_WHEEL = "rwkv==0.8.32"
RWKV_VOCAB = "rwkv/rwkv_vocab_v20230424.txt"


def convert_rwkv_world(src: Path, out: Path) -> Path:
    """A vocab-only GGUF of the RWKV "world" vocabulary, written the way llama.cpp's converter
    writes it (conversion/base.py _set_vocab_rwkv_world): ``<s>`` first (CONTROL), each entry
    as the text of its Python bytes repr, [PADn] UNUSED up to 65536, bos=eos=0, eot=261."""
    import ast

    import gguf

    tokens: list[bytes] = [b"<s>"]
    types: list[int] = [gguf.TokenType.CONTROL]
    for line in src.read_text(encoding="utf-8").splitlines():
        parts = line.split(" ")
        tok = ast.literal_eval(" ".join(parts[1:-1]))
        tok = tok.encode("utf-8") if isinstance(tok, str) else tok
        tokens.append(repr(tok)[2:-1].encode("utf-8"))
        types.append(gguf.TokenType.NORMAL)
    for i in range(len(tokens), 65536):
        tokens.append(f"[PAD{i}]".encode())
        types.append(gguf.TokenType.UNUSED)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    w = gguf.GGUFWriter(str(tmp), "rwkv6")
    w.add_name("rwkv-world-vocab")
    w.add_tokenizer_model("rwkv")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    w.add_eot_token_id(261)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    tmp.replace(out)
    return out


def rwkv_world_gguf() -> Path:
    """The converted RWKV world vocabulary (cached)."""
    out = corpus.cache_dir() / "vocabs" / "ggml-vocab-rwkv-world.gguf"
    if not out.exists():
        convert_rwkv_world(corpus.wheel_member(RWKV_WHEEL, RWKV_VOCAB), out)
    return out


def vocab_files(opts: Options) -> list[Path]:
    files = list(corpus.vocab_ggufs()) + [rwkv_world_gguf()]
    if opts.full:
        files.append(corpus.smollm2())
    return files


def cases(opts: Options) -> Iterator[Case]:
    from ..reference import isolated
    from ..reference.vocab import RefVocab
    from ..vocab import Vocab

    rng = random.Random(opts.seed)
    n_random = 200 if opts.full else 12
    for path in vocab_files(opts):
        name = path.name.removeprefix("ggml-vocab-").removesuffix(".gguf")
        ours = Vocab.from_gguf(path)
        with RefVocab(path) as ref:
            ours_info = _ours_info(ours)
            ref_info = ref.info()
            yield Case(f"{name}/load", ours_info, ref_info)
            specials = [ours.texts[i] for i in ours.special_tokens_cache[:50]]
            texts = _inp_texts(path) + [t.encode() for t in BUILTIN] + random_texts(rng, n_random, specials)
            if not opts.full:
                texts = texts[: len(_inp_texts(path)) + len(BUILTIN) + n_random]
            for ti, text in enumerate(texts):
                for add in (False, True):
                    for parse in (False, True):
                        got = _ours_tokenize(ours, text, add, parse)
                        if got == "aborted":
                            out = isolated.call("vocab.tokenize_outcome", str(path), text, add, parse)
                            exp: Any = (
                                "aborted" if isinstance(out, dict) and out.get("aborted") else out["ids"]
                            )
                        else:
                            exp = ref.tokenize(text, add, parse)
                        yield Case(f"{name}/tokenize#{ti}/add={int(add)},parse={int(parse)}", got, exp)
                        if got == "aborted" or not isinstance(got, list):
                            continue
                        for rm in (False, True):
                            for unparse in (False, True):
                                yield Case(
                                    f"{name}/detokenize#{ti}/add={int(add)},parse={int(parse)},"
                                    f"rm={int(rm)},unparse={int(unparse)}",
                                    ours.detokenize_bytes(got, rm, unparse).hex(),
                                    ref.detokenize(got, rm, unparse).hex(),
                                )
            n = ours.n_tokens
            ids = (
                range(n)
                if opts.full
                else sorted(set(rng.sample(range(n), min(n, 300))) | set(ours.special_tokens_cache[:50]))
            )
            yield Case(
                f"{name}/token_to_piece",
                [
                    [ours.token_to_piece(i, ls, sp).hex() for ls in (0, 1) for sp in (False, True)]
                    for i in ids
                ],
                [[ref.token_to_piece(i, ls, sp).hex() for ls in (0, 1) for sp in (False, True)] for i in ids],
            )
