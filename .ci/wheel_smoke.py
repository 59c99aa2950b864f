"""Smoke test of an installed wheel (run by .ci/run from outside the checkout, in a fresh venv).

Checks that pyggml is imported from the venv and not from a source checkout, that the unicode
tables come from the package (no reference tree), and that SmolLM2 tokenizes exactly as the
reference does on text that goes through the BPE pre-tokenizer's unicode categories.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pyggml
from pyggml.parity import corpus
from pyggml.reference.vocab import RefVocab
from pyggml.vocab import unicode

TEXTS = [
    "Hello world",
    "Ünïcödé façade — naïve café, 東京 🦙 and ١٢٣ digits",
    "def f(x):\n\treturn x ** 2  # 3.14159\r\n",
    "  leading spaces, trailing   \u3000\u00a0",
]


def main() -> int:
    pkg = Path(pyggml.__file__).resolve().parent
    site = Path(sys.prefix).resolve()
    assert site in pkg.parents, f"pyggml imported from {pkg}, not from the venv {site}"
    assert "PYGGML_LLAMA_CPP_DIR" not in os.environ
    tables = unicode.built_tables_file()
    assert tables is not None and pkg in tables.parents, f"unicode tables not shipped: {tables}"
    assert (pkg / "py.typed").is_file(), "py.typed not shipped"

    t0 = time.perf_counter()
    path = corpus.smollm2()
    with pyggml.Model.load(path, vocab_only=True) as model, RefVocab(path) as ref:
        vocab = model.vocab
        for text in TEXTS:
            ours = vocab.tokenize(text, add_special=True)
            theirs = ref.tokenize(text.encode(), True, False)
            assert ours == theirs, (text, ours, theirs)
            assert vocab.detokenize(ours) == text
        print(f"wheel smoke: {model!r}, bos={vocab.bos} eos={vocab.eos} eot={vocab.eot}, "
              f"{len(TEXTS)} texts tokenized as the reference does "
              f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
