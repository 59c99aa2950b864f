"""Write vocab-only GGUF fixtures for the tokenizer parity (uses the ``gguf`` package).

    python tools/convert_vocab.py rwkv-world OUT.gguf   # RWKV world vocab from the rwkv wheel
"""

from __future__ import annotations

import sys
from pathlib import Path

from pyggml.parity import corpus
from pyggml.parity.vocab import RWKV_VOCAB, RWKV_WHEEL, convert_rwkv_world


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "rwkv-world":
        print(__doc__, file=sys.stderr)
        return 2
    out = convert_rwkv_world(corpus.wheel_member(RWKV_WHEEL, RWKV_VOCAB), Path(argv[1]))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
