"""BPE pre-tokenization: the reference's ``tokenizer.ggml.pre`` table and its word splitters.

llama.cpp: src/llama-vocab.cpp (impl::load pre table, llm_tokenizer_bpe regex lists) and
src/unicode.cpp unicode_regex_split.  A regex list refines word boundaries one regex at a
time.  Regex strings the reference recognises exactly go to hand-written splitters (ported
below); any other regex runs as an ECMAScript ``std::regex``.  We run those with Python's
``re`` after the same rewriting the reference does:

- with ``\\p{..}``: every non-ASCII codepoint collapses to one byte (N 0xD1, L 0xD2, P 0xD3,
  M 0xD4, S 0xD5, whitespace 0x0B, anything else 0xD0) and each ``\\p{X}`` becomes a class
  of that byte plus its ASCII members; the collapsed text is matched as latin-1 str;
- without: the codepoints as they are, non-ASCII whitespace replaced by 0x0B.

Where Python ``re`` and libstdc++ ECMAScript could differ: ``$`` (Python also matches before
a final newline; we rewrite it to ``\\Z``), ``\\s``/``\\d``/``\\w`` (C locale = ASCII; we use
``re.ASCII``), and empty-match iteration (both retry at the same position requiring a
non-empty match, then move one codepoint; identical for these patterns).  Alternation is
ordered and backtracking in both.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import unicode as U

# --- the reference's regex strings (data) ----------------------------------------------
_CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
LLAMA3 = (
    _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_ORIG = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2 = _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN35 = (
    _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
NEWLINES = r"[^\n]+|[\n]+"
KIMI_K2 = r"\p{Han}+"
AFMOE_DIGITS = r"\p{AFMoE_digits}"
TINY_AYA_DIGITS = r"\d{1,3}(?=(?:\d{3})*\b)"

_DS3_MAIN = (
    r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^"
    "\r\n"
    r"\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
    r"| ?[\p{P}\p{S}]+["
    "\r\n"
    r"]*|\s*["
    "\r\n"
    r"]+|\s+(?!\S)|\s+"
)
_GPT4O_BODY = (
    r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+" + _CONTRACTIONS + "?"
    r"|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*" + _CONTRACTIONS + "?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_CASED = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+" + _CONTRACTIONS + "?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*" + _CONTRACTIONS + "?"
)
_STARCODER = [r"\p{N}", GPT2]
_PORO = [" ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+"]

_DEEPSEEK_LATIN = "\\s?[A-Za-z\xb5\xc0-\xd6\xd8-\xf6\xf8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2\U000118a0-\U000118df\U0001e900-\U0001e943]+"  # noqa: E501

# pre type -> (regex list, byte_encode); llama.cpp: llm_tokenizer_bpe::llm_tokenizer_bpe
_REGEXES: dict[str, list[str]] = {
    "LLAMA3": [LLAMA3],
    "DBRX": [LLAMA3],
    "SMAUG": [LLAMA3],
    "JAIS2": [
        _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
        r"|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)"
        r"|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1}"
    ],
    "DEEPSEEK_LLM": [
        "[\r\n]",
        _DEEPSEEK_LATIN,
        "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
        "\\s+$",
        "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
        r"\p{N}+",
    ],
    "DEEPSEEK3_LLM": [r"\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+", _DS3_MAIN],
    "SPARK2_5": [
        r"\p{N}{1,3}",
        "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
        r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^"
        "\r\n"
        r"\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
        r"| ?[\p{P}\p{S}]+|["
        "\r\n"
        r"]|\s+(?!\S)|\s+",
        r"\p{N}",
    ],
    "YOUTU": [
        "[\uac00-\ud7a3\u3131-\u318e]+|[\uff01\u2026\u201c\u201d\u2018\u2019\u2014\uff1a\uff1b\uff0c\u3001-\u303f\ufe30-\ufe4f]+|[\u3105-\u312f]+|[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
        _CASED + r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    ],
    "DEEPSEEK_CODER": [
        "[\r\n]",
        r"\s?\p{L}+",
        r"\s?\p{P}+",
        "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
        r"\p{N}",
    ],
    "FALCON": [r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"],
    "STARCODER": _STARCODER,
    "REFACT": _STARCODER,
    "COMMAND_R": _STARCODER,
    "SMOLLM": _STARCODER,
    "CODESHELL": _STARCODER,
    "EXAONE": _STARCODER,
    "MINERVA": _STARCODER,
    "MELLUM2": _STARCODER,
    "GPT2": [GPT2],
    "MPT": [GPT2],
    "OLMO": [GPT2],
    "JAIS": [GPT2],
    "TRILLION": [GPT2],
    "GRANITE_DOCLING": [GPT2],
    "STABLELM2": [QWEN2],
    "QWEN2": [QWEN2],
    "HUNYUAN": [QWEN2],
    "SOLAR_OPEN": [QWEN2],
    "QWEN35": [QWEN35],
    "PORO": _PORO,
    "BLOOM": _PORO,
    "GPT3_FINNISH": _PORO,
    "CHATGLM4": [LLAMA3],
    "VIKING": [_PORO[0], r"\p{N}"],
    "TEKKEN": [
        r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])"
        r"([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    ],
    "CHAMELEON": [
        "<sentinel:[0-9]+>",
        "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
        "([\\t\\n]|    |  )",
        r"\p{N}",
        r"[\p{P}!-/:-@\[-`{-~]",
        GPT2,
    ],
    "GPT4O": [_GPT4O_BODY],
    "MINIMAX_M2": [_GPT4O_BODY],
    "GRANITE_EMB_MULTI": [_GPT4O_BODY.replace(r"(?=[\p{L}])", r"(?=[\p{L}\p{M}])")],
    "TINY_AYA": [
        TINY_AYA_DIGITS,
        _CASED + r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    ],
    "KIMI_K2": [KIMI_K2],
    "SUPERBPE": [r"\p{N}+", r"(?=(\d{3})+(?!\d))"],
    "BAILINGMOE": [
        r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
        r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"
    ],
    "SEED_CODER": [
        _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+"
        r"|\s+(?!\S)|\s+"
    ],
    "UFAKZEKA": [r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "GROK_2": [QWEN2],
    "AFMOE": [
        AFMOE_DIGITS,
        "[\u4e00-\u9fff\u3400-\u4dbf\u8c48-\ufaff\u3040-\u309f\u30a0-\u30ff\uff65-\uff9f\u2f00-\u2fdf\u0e40-\u0e7f\u0e80-\u0eff\u1780-\u17ff\u1000-\u109f\uaa60-\uaa7f\ua9e0-\ua9ff\uac00-\ud7af\u1100-\u11ff]+",
        r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
        r"| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    ],
    "LAGUNA": [NEWLINES, QWEN2],
    "EXAONE_MOE": [
        _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}"
        r"| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+"
    ],
    "GEMMA4": [NEWLINES],
    "SARVAM_MOE": [NEWLINES],
    "MINICPM5": [
        r"\p{N}{1,3}",
        _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*"
        r"|\s*[\r\n]+|\s+(?!\S)|\s+",
    ],
    "WHITESPACE": [r"\S+"],
    "DEFAULT": [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"],
}
for _k in ("DEEPSEEK3_LLM",):
    _REGEXES["HUNYUAN_DENSE"] = _REGEXES["JOYAI_LLM"] = _REGEXES["HY_V4"] = _REGEXES[_k]
_NO_BYTE_ENCODE = {"GEMMA4", "SARVAM_MOE", "WHITESPACE"}


@dataclass(frozen=True)
class PreTokenizer:
    """One row of the reference's ``tokenizer.ggml.pre`` table: the pre type and the flags it
    sets (``None`` = leaves the type default alone)."""

    pre_type: str
    ignore_merges: bool | None = None
    clean_spaces: bool | None = None
    add_bos: bool | None = None
    add_sep: bool | None = None
    escape_whitespaces: bool | None = None
    bos_null: bool = False  # special_bos_id = LLAMA_TOKEN_NULL
    lowercase: bool | None = None  # normalizer lowercase

    @property
    def regexes(self) -> list[str]:
        return _REGEXES.get(self.pre_type, _REGEXES["DEFAULT"])

    @property
    def byte_encode(self) -> bool:
        return self.pre_type not in _NO_BYTE_ENCODE


def _p(t: str, **kw) -> PreTokenizer:
    return PreTokenizer(t, **kw)


_NC = {"clean_spaces": False}
# llama.cpp: src/llama-vocab.cpp impl::load, the tokenizer_pre branch
PRE_TABLE: dict[str, PreTokenizer] = {
    "default": _p("DEFAULT"),
    "minicpm5": _p("MINICPM5", ignore_merges=True),
    **{
        k: _p("LLAMA3", ignore_merges=True, add_bos=True)
        for k in (
            "llama3",
            "llama-v3",
            "llama-bpe",
            "falcon3",
            "falcon-h1",
            "pixtral",
            "midm-2.0",
            "lfm2",
            "jina-v5-nano",
        )
    },
    "deepseek-llm": _p("DEEPSEEK_LLM", **_NC),
    "deepseek-coder": _p("DEEPSEEK_CODER", **_NC),
    "deepseek-v3": _p("DEEPSEEK3_LLM", **_NC),
    "spark2_5": _p("SPARK2_5", **_NC),
    "youtu": _p("YOUTU", clean_spaces=False, ignore_merges=True),
    "falcon": _p("FALCON"),
    "mpt": _p("MPT"),
    "starcoder": _p("STARCODER"),
    **{
        k: _p("GPT2")
        for k in (
            "gpt-2",
            "phi-2",
            "jina-es",
            "jina-de",
            "gigachat",
            "jina-v2-es",
            "jina-v2-de",
            "a.x-4.0",
            "mellum",
            "modern-bert",
        )
    },
    "jais-2": _p("JAIS2"),
    "gemma4": _p("GEMMA4", escape_whitespaces=True),
    "granite-embed-multi-311m": _p("GEMMA4", escape_whitespaces=True),
    "sarvam-moe": _p("SARVAM_MOE", escape_whitespaces=True, clean_spaces=False),
    **{k: _p("GPT2", add_sep=True) for k in ("jina-v1-en", "jina-v2-code", "roberta-bpe")},
    "whitespace": _p("WHITESPACE", lowercase=False),
    "refact": _p("REFACT"),
    "command-r": _p("COMMAND_R", **_NC),
    **{k: _p("QWEN2", **_NC) for k in ("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2")},
    "qwen35": _p("QWEN35", **_NC),
    "stablelm2": _p("STABLELM2"),
    "olmo": _p("OLMO"),
    "dbrx": _p("DBRX"),
    "smaug-bpe": _p("SMAUG"),
    "poro-chat": _p("PORO", **_NC),
    "chatglm-bpe": _p("CHATGLM4", bos_null=True),
    "glm4": _p("CHATGLM4", bos_null=True, ignore_merges=True),
    "glm5": _p("CHATGLM4", bos_null=True, ignore_merges=True),
    "viking": _p("VIKING", **_NC),
    "jais": _p("JAIS"),
    "tekken": _p("TEKKEN", clean_spaces=False, ignore_merges=True, add_bos=True),
    "smollm": _p("SMOLLM", **_NC),
    "codeshell": _p("CODESHELL"),
    "bloom": _p("BLOOM"),
    "gpt3-finnish": _p("GPT3_FINNISH"),
    "exaone": _p("EXAONE"),
    "exaone4": _p("GPT2"),
    "exaone-moe": _p("EXAONE_MOE"),
    "chameleon": _p("CHAMELEON", add_bos=True, clean_spaces=False),
    "minerva-7b": _p("MINERVA"),
    "megrez": _p("QWEN2"),
    **{k: _p("GPT4O", **_NC) for k in ("gpt-4o", "llama4", "kanana2", "talkie")},
    "granite-embed-multi-97m": _p("GRANITE_EMB_MULTI", clean_spaces=False, ignore_merges=True),
    "tiny_aya": _p("TINY_AYA", **_NC),
    "cohere2moe": _p("TINY_AYA", **_NC),
    "superbpe": _p("SUPERBPE", **_NC),
    "trillion": _p("TRILLION", **_NC),
    "granite-docling": _p("GRANITE_DOCLING", **_NC),
    **{k: _p("BAILINGMOE", **_NC) for k in ("bailingmoe", "bailingmoe2", "llada-moe")},
    "seed-coder": _p("SEED_CODER", **_NC),
    "hunyuan": _p("HUNYUAN", **_NC),
    "hunyuan-dense": _p("HUNYUAN_DENSE", **_NC),
    "hy_v4": _p("HY_V4", **_NC),
    "joyai-llm": _p("JOYAI_LLM", **_NC),
    "kimi-k2": _p("KIMI_K2", **_NC),
    "ufakzeka": _p("UFAKZEKA", **_NC),
    "grok-2": _p("GROK_2", **_NC),
    "afmoe": _p("AFMOE", **_NC),
    "laguna": _p("LAGUNA", **_NC),
    "minimax-m2": _p("MINIMAX_M2", **_NC),
    "solar-open": _p("SOLAR_OPEN", **_NC),
    "mellum2": _p("MELLUM2"),
}


# --- hand-written splitters (llama.cpp: src/unicode.cpp unicode_regex_split_custom_*) -----
# Each takes the codepoints, their flags and the current segment lengths, and returns new
# segment lengths.  Positions outside a segment read as "no codepoint" (flags 0).

_OOR = -1  # the reference's OUT_OF_RANGE codepoint


def _segments(cpts: list[int], fl: list[int],
              offsets: list[int]) -> Iterator[tuple[list[int], list[int], int]]:
    """Per segment: local copies of its codepoints and flags, padded with "no codepoint"
    (cpt -1, flags 0) past the end so the splitters' look-ahead needs no bounds checks, and
    its length."""
    start = 0
    for seg in offsets:
        yield cpts[start : start + seg] + [_OOR] * 3, fl[start : start + seg] + [0] * 3, seg
        start += seg


# the contractions 're 've 'll as code point pairs after the apostrophe
_RE_VE_LL = ((0x72, 0x65), (0x76, 0x65), (0x6C, 0x6C))


def _split_gpt2(cpts: list[int], fl: list[int], offsets: list[int]) -> list[int]:
    out: list[int] = []
    WS, LET, NUM = U.WHITESPACE, U.LETTER, U.NUMBER
    for c, f, end in _segments(cpts, fl, offsets):
        prev = pos = 0
        while pos < end:
            cpt = c[pos]
            flags = f[pos]
            if cpt == 0x27 and pos + 1 < end:  # '
                n1 = c[pos + 1]
                if n1 in (0x73, 0x74, 0x6D, 0x64):  # s t m d
                    out.append(pos + 2 - prev)
                    pos = prev = pos + 2
                    continue
                if pos + 2 < end and (n1, c[pos + 2]) in _RE_VE_LL:
                    out.append(pos + 3 - prev)
                    pos = prev = pos + 3
                    continue
            f2 = f[pos + 1] if cpt == 0x20 else flags
            if f2 & LET:
                pos += cpt == 0x20
                while f[pos] & LET:
                    pos += 1
            elif f2 & NUM:
                pos += cpt == 0x20
                while f[pos] & NUM:
                    pos += 1
            elif not (f2 & (WS | LET | NUM)) and f2:
                pos += cpt == 0x20
                while True:
                    f2 = f[pos]
                    if (f2 & (WS | LET | NUM)) or not f2:
                        break
                    pos += 1
            else:
                nws = pos
                while f[nws] & WS:
                    nws += 1
                nws -= pos
                if nws > 1 and nws + pos < end:
                    pos += nws - 1
                elif nws > 0:
                    pos += nws
                else:
                    pos += 1
            if pos > prev:
                out.append(pos - prev)
            prev = pos
    return out


def _split_llama3_family(cpts: list[int], fl: list[int], offsets: list[int], *, max_digits: int,
                         marks: bool) -> list[int]:
    """llama3 (``\\p{N}{1,3}``), qwen2 (``\\p{N}``) and qwen35 (letters also take marks)."""
    out: list[int] = []
    WS, NUM = U.WHITESPACE, U.NUMBER
    LET = U.LETTER | U.ACCENT_MARK if marks else U.LETTER
    tolower = U.tolower
    for c, f, end in _segments(cpts, fl, offsets):
        prev = pos = 0
        while pos < end:
            cpt = c[pos]
            flags = f[pos]
            if cpt == 0x27 and pos + 1 < end:
                n1 = tolower(c[pos + 1])
                if n1 in (0x73, 0x74, 0x6D, 0x64):
                    out.append(pos + 2 - prev)
                    pos = prev = pos + 2
                    continue
                if pos + 2 < end and (n1, tolower(c[pos + 2])) in _RE_VE_LL:
                    out.append(pos + 3 - prev)
                    pos = prev = pos + 3
                    continue
            if not (cpt == 0x0D or cpt == 0x0A or flags & NUM) and (flags & LET or f[pos + 1] & LET):
                pos += 1
                while f[pos] & LET:
                    pos += 1
            elif flags & NUM:
                if max_digits == 1:
                    pos += 1
                else:
                    ini_n = pos
                    while f[pos] & NUM:
                        pos += 1
                        if pos - ini_n >= max_digits:
                            out.append(pos - prev)
                            prev = pos
                            ini_n = pos
            else:
                f2 = f[pos + 1] if cpt == 0x20 else flags
                if not (f2 & (WS | LET | NUM)) and flags:
                    pos += cpt == 0x20
                    while True:
                        f2 = f[pos]
                        if (f2 & (WS | LET | NUM)) or not f2:
                            break
                        pos += 1
                    while c[pos] == 0x0D or c[pos] == 0x0A:
                        pos += 1
                else:
                    nws = 0
                    last_rn = 0
                    while f[pos + nws] & WS:
                        c2 = c[pos + nws]
                        if c2 == 0x0D or c2 == 0x0A:
                            last_rn = pos + nws + 1
                        nws += 1
                    if last_rn > 0:
                        pos = last_rn
                    elif nws > 1 and pos + nws < end:
                        pos += nws - 1
                    elif nws > 0:
                        pos += nws
                    else:
                        pos += 1
            if pos > prev:
                out.append(pos - prev)
            prev = pos
    return out


def _split_newlines(cpts: list[int], fl: list[int], offsets: list[int]) -> list[int]:
    out: list[int] = []
    start = 0
    for seg in offsets:
        pos, end = start, start + seg
        start = end
        while pos < end:
            nl = cpts[pos] == 0x0A
            run = pos
            while pos < end and (cpts[pos] == 0x0A) == nl:
                pos += 1
            out.append(pos - run)
    return out


def _split_digit_groups(cpts: list[int], fl: list[int], offsets: list[int]) -> list[int]:
    """llama.cpp: unicode_regex_split_custom_afmoe (also serves tiny_aya's digit regex)."""
    out: list[int] = []
    start = 0
    NUM = U.NUMBER
    for seg in offsets:
        ini, end = start, start + seg
        start = end
        prev = ini
        pos = ini
        while pos < end:
            if fl[pos] & NUM:
                d0 = pos
                while pos < end and fl[pos] & NUM:
                    pos += 1
                n = pos - d0
                cur = d0
                r = n % 3
                if r:
                    out.append(cur + r - prev)
                    cur += r
                    prev = cur
                while cur < d0 + n:
                    cur += 3
                    out.append(cur - prev)
                    prev = cur
                continue
            pos += 1
        if prev < end:
            out.append(end - prev)
    return out


def _is_han(cpt: int) -> bool:
    """llama.cpp: unicode_cpt_is_han (its fixed list of CJK ideograph blocks)."""
    return (
        0x4E00 <= cpt <= 0x9FFF
        or 0x3400 <= cpt <= 0x4DBF
        or 0x20000 <= cpt <= 0x2A6DF
        or 0x2A700 <= cpt <= 0x2EBEF  # extensions C, D, E, F (contiguous)
        or 0xF900 <= cpt <= 0xFAFF
        or 0x2F800 <= cpt <= 0x2FA1F
    )



def _split_kimi_k2(cpts: list[int], fl: list[int], offsets: list[int]) -> list[int]:
    """llama.cpp: unicode_regex_split_custom_kimi_k2 (Han runs, then llama3-like words with
    Han letters left out, 1-3 digit numbers, punctuation runs, whitespace)."""
    out: list[int] = []
    WS, LET, NUM = U.WHITESPACE, U.LETTER, U.NUMBER
    tolower = U.tolower
    for c, f, end in _segments(cpts, fl, offsets):
        prev = 0

        def add(e: int) -> None:
            nonlocal prev
            if e > prev:
                out.append(e - prev)
            prev = e

        def letter(p: int, c: list[int] = c, f: list[int] = f) -> bool:  # a letter, not Han
            return bool(f[p] & LET) and not _is_han(c[p])

        pos = 0
        while pos < end:
            cpt = c[pos]
            flags = f[pos]
            if _is_han(cpt):
                while _is_han(c[pos]):
                    pos += 1
                add(pos)
                continue
            lead_ok = not (cpt in (0x0D, 0x0A) or flags & (LET | NUM))
            if letter(pos) or (lead_ok and letter(pos + 1)):
                has_lead = False
                if lead_ok:
                    has_lead = True
                    pos += 1
                has_letters = False
                while letter(pos):
                    has_letters = True
                    pos += 1
                if has_letters or (not has_lead and letter(pos)):
                    if not has_letters:
                        pos += 1
                    while letter(pos):
                        pos += 1
                    if c[pos] == 0x27 and pos + 1 < end:  # optional 's 't 're 've 'm 'll 'd
                        n1 = tolower(c[pos + 1])
                        if n1 in (0x73, 0x74, 0x6D, 0x64):
                            pos += 2
                        elif pos + 2 < end and (n1, tolower(c[pos + 2])) in _RE_VE_LL:
                            pos += 3
                    add(pos)
                    continue
                if has_lead:
                    pos -= 1
            if flags & NUM:
                ini = pos
                while f[pos] & NUM:
                    pos += 1
                    if pos - ini >= 3:
                        add(pos)
                        ini = pos
                add(pos)
                continue
            f2 = f[pos + 1] if cpt == 0x20 else flags
            if not (f2 & (WS | LET | NUM)) and f2:
                pos += cpt == 0x20
                while not (f2 & (WS | LET | NUM)) and f2:
                    pos += 1
                    f2 = f[pos]
                while c[pos] in (0x0D, 0x0A):
                    pos += 1
                add(pos)
                continue
            nws = 0
            last_rn = 0
            while f[pos + nws] & WS:
                if c[pos + nws] in (0x0D, 0x0A):
                    last_rn = pos + nws + 1
                nws += 1
            if last_rn > 0:
                pos = last_rn
                add(pos)
                continue
            if nws > 1 and c[pos + nws] != _OOR:
                pos += nws - 1
                add(pos)
                continue
            if nws > 0:
                pos += nws
                add(pos)
                continue
            pos += 1
            add(pos)
    return out


_CUSTOM = {
    GPT2: _split_gpt2,
    LLAMA3: functools.partial(_split_llama3_family, max_digits=3, marks=False),
    LLAMA3_ORIG: functools.partial(_split_llama3_family, max_digits=3, marks=False),
    QWEN2: functools.partial(_split_llama3_family, max_digits=1, marks=False),
    QWEN35: functools.partial(_split_llama3_family, max_digits=1, marks=True),
    NEWLINES: _split_newlines,
    KIMI_K2: _split_kimi_k2,
    AFMOE_DIGITS: _split_digit_groups,
    TINY_AYA_DIGITS: _split_digit_groups,
}

# --- the std::regex path -------------------------------------------------------------------

_UCAT = {
    "N": U.NUMBER,
    "L": U.LETTER,
    "P": U.PUNCTUATION,
    "M": U.ACCENT_MARK,
    "S": U.SYMBOL,
    "Lu": U.LETTER,
    "Ll": U.LETTER,
    "Lt": U.LETTER,
    "Lm": U.LETTER,
    "Lo": U.LETTER,
}
_UCAT_BYTE = {U.NUMBER: 0xD1, U.LETTER: 0xD2, U.PUNCTUATION: 0xD3, U.ACCENT_MARK: 0xD4, U.SYMBOL: 0xD5}
# ASCII members of each collapsed class (llama.cpp: k_ucat_map)
_UCAT_ASCII = {
    U.NUMBER: "0-9",
    U.LETTER: "A-Za-z",
    U.PUNCTUATION: r"!-#%-*,-/:-;?-@\[-\]_\{\}",
    U.ACCENT_MARK: "",
    U.SYMBOL: r"\$\+<->^`\|\~",
}


def uses_collapse(rx: str) -> bool:
    return any(f"\\p{{{k}}}" in rx for k in _UCAT)


def _collapse_regex(rx: str) -> str:
    """llama.cpp: unicode_regex_split, the collapsed-regex rewrite (bracket tracking included)."""
    out: list[str] = []
    inside = False
    i = 0
    n = len(rx)
    while i < n:
        ch = rx[i]
        if ch == "[" and (i == 0 or rx[i - 1] != "\\"):
            out.append("[")
            inside = True
            i += 1
            continue
        if inside and ch == "]" and rx[i - 1] != "\\":
            out.append("]")
            inside = False
            i += 1
            continue
        if ch == "\\" and i + 3 < n and rx[i + 1] == "p" and rx[i + 2] == "{":
            close = rx.find("}", i + 3)
            if close != -1 and close <= i + 10 and rx[i + 3 : close] in _UCAT:
                cat = _UCAT[rx[i + 3 : close]]
                body = chr(_UCAT_BYTE[cat]) + _UCAT_ASCII[cat]
                out.append(body if inside else f"[{body}]")
                i = close + 1
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _to_python(rx: str) -> str:
    # ECMAScript `$` (no multiline) is end of input only
    out = []
    inside = False
    for i, ch in enumerate(rx):
        esc = i > 0 and rx[i - 1] == "\\"
        if ch == "[" and not esc:
            inside = True
        elif ch == "]" and not esc:
            inside = False
        if ch == "$" and not esc and not inside:
            out.append(r"\Z")
        else:
            out.append(ch)
    return "".join(out)


@functools.cache
def _compiled(rx: str) -> tuple[re.Pattern[str], bool]:
    collapse = uses_collapse(rx)
    if collapse and any(ord(c) >= 128 for c in rx):
        raise ValueError("Regex includes both unicode categories and non-ASCII characters - not supported")
    body = _collapse_regex(rx) if collapse else rx
    return re.compile(_to_python(body), re.ASCII), collapse


def _split_regex(text: str, pattern: re.Pattern[str], offsets: list[int]) -> list[int]:
    """llama.cpp: unicode_regex_split_stl (gaps between matches are words too)."""
    out: list[int] = []
    start = 0
    for seg in offsets:
        sub = text[start : start + seg]
        last = 0
        for m in pattern.finditer(sub):
            if m.start() > last:
                out.append(m.start() - last)
            out.append(m.end() - m.start())
            last = m.end()
        if last < seg:
            out.append(seg - last)
        start += seg
    return out


@functools.cache
def _collapse_table() -> np.ndarray:
    """uint8 per codepoint: the char the reference's collapsed text holds for it."""
    fl = U.flags_table()
    cat = np.full(256, 0xD0, dtype=np.uint8)
    for flag, byte in _UCAT_BYTE.items():
        cat[flag] = byte
    table = np.where(fl & U.WHITESPACE, np.uint8(0x0B), cat[fl & U.MASK_CATEGORIES]).astype(np.uint8)
    table[:128] = np.arange(128, dtype=np.uint8)
    return table


@functools.cache
def _collapse_list() -> list[str]:
    return [chr(b) for b in _collapse_table().tolist()]


def _collapsed_text(arr: np.ndarray) -> str:
    """llama.cpp: unicode_regex_split text_collapsed (one latin-1 char per codepoint)."""
    table = _collapse_table()
    inside = arr < U.MAX_CODEPOINTS
    out = np.where(inside, table[np.where(inside, arr, 0)], np.uint8(0xD0)).astype(np.uint8)
    return out.tobytes().decode("latin-1")


def _wide_text(arr: np.ndarray, fl: np.ndarray) -> str:
    """The std::wregex input: codepoints, non-ASCII whitespace replaced by 0x0B."""
    w = np.where((arr > 0x7F) & (fl & U.WHITESPACE != 0), 0x0B, arr).astype("<u4")
    return w.tobytes().decode("utf-32-le", "surrogatepass")


@dataclass
class Splitter:
    """The pre-tokenizer of one vocabulary: its regex list and byte encoding."""

    regexes: list[str]
    byte_encode: bool = True

    def __post_init__(self) -> None:
        for rx in self.regexes:
            if rx not in _CUSTOM:
                _compiled(rx)  # fail at load, not at first use

    def split(self, data: bytes) -> list[bytes]:
        """llama.cpp: unicode_regex_split -> the words (byte-encoded when ``byte_encode``)."""
        try:
            text: str | None = data.decode("utf-8")
            cpts = list(map(ord, text))
        except UnicodeDecodeError:
            text = None
            cpts = U.cpts_from_utf8(data)
            if cpts and max(cpts) > 0x10FFFF:
                U.cpts_to_utf8(cpts)  # raises like the reference does when it re-encodes words
        small = len(cpts) < 512  # below this, list lookups beat numpy's call overhead
        if small:
            fl_list = U._flags_list()
            fl: list[int] | None = [fl_list[c] if c < U.MAX_CODEPOINTS else U.UNDEFINED for c in cpts]
        else:
            arr = np.array(cpts, dtype=np.int64)
            ft = U.flags_table()
            fl_arr = np.where(arr < U.MAX_CODEPOINTS, ft[np.minimum(arr, U.MAX_CODEPOINTS - 1)], U.UNDEFINED)
            fl = None
        offsets = [len(cpts)]
        collapsed: str | None = None
        wide: str | None = None
        for rx in self.regexes:
            custom = _CUSTOM.get(rx)
            if custom is not None:
                if fl is None:
                    fl = fl_arr.tolist()
                tmp = custom(cpts, fl, offsets)
                if tmp:
                    offsets = tmp
                    continue
            pattern, collapse = _compiled(rx)
            if collapse:
                if collapsed is None:
                    if small:
                        coll = _collapse_list()
                        collapsed = "".join([coll[c] if c < U.MAX_CODEPOINTS else "\xd0" for c in cpts])
                    else:
                        collapsed = _collapsed_text(arr)
                offsets = _split_regex(collapsed, pattern, offsets)
            else:
                if wide is None:
                    if small:
                        assert fl is not None
                        wide = "".join(["\x0b" if c > 0x7F and f & U.WHITESPACE else chr(c)
                                        for c, f in zip(cpts, fl, strict=True)])
                    else:
                        wide = _wide_text(arr, fl_arr)
                offsets = _split_regex(wide, pattern, offsets)
        if text is None:
            text = "".join(map(chr, cpts))  # U+FFFD for undecodable bytes, surrogates kept
        words: list[bytes] = []
        pos = 0
        for n in offsets:
            words.append(text[pos : pos + n].encode("utf-8", "surrogatepass"))
            pos += n
        if self.byte_encode:
            return [U.byte_encode(w) for w in words]
        return words
