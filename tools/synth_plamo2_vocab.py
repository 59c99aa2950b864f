"""Write the synthetic PLaMo-2 vocab-only GGUF (seeded; see pyggml/parity/vocab_plamo2.py).

No real PLaMo-2 vocabulary is available through the package registries: this one is
synthesized with the converter's layout (control tokens, 256 byte tokens, scored pieces,
[PADn] padding at -1000).

    python tools/synth_plamo2_vocab.py OUT.gguf [SEED]
"""

from __future__ import annotations

import sys
from pathlib import Path

from pyggml.parity.vocab_plamo2 import write_plamo2_gguf


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    seed = int(argv[1]) if len(argv) == 2 else 0
    print(write_plamo2_gguf(Path(argv[0]), seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
