"""Write the synthetic PLaMo-2 vocab-only GGUF (seeded; see pyggml/parity/vocab_plamo2.py).

No real PLaMo-2 vocabulary is available through the package registries: this one is
synthesized with the converter's layout (control tokens, 256 byte tokens, scored pieces,
[PADn] padding at -1000).

    python tools/synth_plamo2_vocab.py OUT.gguf [SEED]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyggml.parity.vocab_plamo2 import write_plamo2_gguf


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="the GGUF file to write")
    ap.add_argument("seed", type=int, nargs="?", default=0)
    args = ap.parse_args(argv)
    print(write_plamo2_gguf(args.out, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
