"""Every BPE pre-tokenizer the reference knows (its ``tokenizer.ggml.pre`` table), each set
on a copy of the gpt-2 vocab: load state (add_bos, special ids, EOG...) and token ids
against the running reference.  One name per distinct table row (type + flags) here; the
kimi-k2 splitter (Han runs) gets its own corpus."""

from __future__ import annotations

import random

import pytest
from vocab_variants import string, variant

from pyggml.errors import TokenizerError
from pyggml.parity import corpus
from pyggml.parity.vocab import EXTRA_TEXTS, _ours_info, random_texts
from pyggml.vocab import Vocab
from pyggml.vocab.pretokenize import PRE_TABLE

_ROWS: dict[object, str] = {}
for _name in sorted(PRE_TABLE):
    _ROWS.setdefault(PRE_TABLE[_name], _name)
NAMES = sorted(_ROWS.values())

_TEXTS = [
    b"Hello world! It's 3.14159 o'clock, DON'T we'LL 1234567 items.",
    "中文字符 漢字テスト 𠀀𠀁 Ｆｕｌｌ 한국어 ひらがな".encode(),
    "abc中def 12中34 '中 Ab'S x'Re".encode(),
    b"def f(x):\n    return x**2  # sq\n\n\n\t\t  end  ",
    "Ελληνικά русский — “quotes” … 🦙👩‍👩‍👧 a\u0301".encode(),
    b"<sentinel:12> IMGIMGABZ   x\r\n\r\n",
    b"  leading   and trailing  ",
    *EXTRA_TEXTS[:5],
]


def _path(name: str):
    return variant(corpus.reference_tree() / "models" / "ggml-vocab-gpt-2.gguf",
                   {"tokenizer.ggml.pre": string(name)})


@pytest.mark.parametrize("name", NAMES)
def test_pretok_type_on_reference(name):
    from pyggml.reference import vocab_guarded
    from pyggml.reference.vocab import RefVocab

    path = _path(name)
    v = Vocab.from_gguf(path)
    with RefVocab(path) as r:
        assert _ours_info(v) == r.info()
        texts = _TEXTS + random_texts(random.Random(name), 2, [])
        for t in texts:
            for add in (False, True):
                try:
                    got: object = v.tokenize(t, add, False)
                except TokenizerError:
                    # the reference aborts here (gpt-2's merges under a splitter without byte
                    # encoding): the forked reference must die too
                    assert vocab_guarded.tokenize(path, t, add, False) == "aborted", (name, t)
                    continue
                assert got == r.tokenize(t, add, False), (name, t, add)


def test_pretok_kimi_k2_han_runs():
    from pyggml.reference.vocab import RefVocab

    path = _path("kimi-k2")
    v = Vocab.from_gguf(path)
    rng = random.Random(9)
    soup = "中文漢字𠀀丽 abcXYZ 'sT're 123456 ,.!? \n\r\t  éü ひカ한 ٣"
    with RefVocab(path) as r:
        for _ in range(60):
            t = "".join(rng.choice(soup) for _ in range(rng.randrange(1, 40))).encode()
            assert v.tokenize(t, False, False) == r.tokenize(t, False, False), t


def test_pretok_load_hash_order_hashes_match_libstdcxx():
    """The numpy ``std::_Hash_bytes`` behind the EOT/FIM detection order (run at every BPE
    load) against libstdc++'s own function."""
    from pyggml.vocab import hash_order

    if not hash_order.available():
        pytest.fail("libstdc++ is not loadable: the reference's hash order cannot be checked")
    rng = random.Random(1)
    keys = [b"", b"a", b"abcdefgh", b"abcdefghi", bytes(range(256)) * 3]
    keys += [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))) for _ in range(2000)]
    assert (hash_order.hashes(keys) == hash_order._hashes_ctypes(keys)).all()
