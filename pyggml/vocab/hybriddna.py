"""The ``hybriddna`` BPE session: text outside ``<dna>...</dna>`` goes through the plain BPE
session, the tag contents become fixed-size DNA k-mer tokens.

llama.cpp: src/llama-vocab.cpp llm_tokenizer_hybriddna_session (tokenize, emit_dna_kmers) and
the k-mer marker handling in llama_vocab::impl::load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import bpe

if TYPE_CHECKING:
    from .vocab import Vocab

# U+E000 suffix that keeps a k-mer token apart from a base-vocab token of the same letters in
# token_to_id; stripped from the token texts at load (see strip_kmer_marker)
KMER_MARKER = "\ue000".encode()
K = 6
OPEN_TAG = b"<dna>"
CLOSE_TAG = b"</dna>"
OOV = b"<oov>"
# ASCII a-z -> A-Z only: the reference uppercases byte by byte, nothing else
_UPPER = bytes.maketrans(bytes(range(0x61, 0x7B)), bytes(range(0x41, 0x5B)))


def strip_kmer_marker(texts: list[bytes], token_to_id: dict[bytes, int]) -> None:
    """Remove the marker from every token text after ``<oov>`` (token_to_id keeps it).

    llama.cpp: llama_vocab::impl::load, the ``hybriddna`` block after the token loop: only texts
    longer than the marker lose it, and only from the token after ``<oov>`` on."""
    oov = token_to_id.get(OOV)
    if oov is None:
        return
    m = len(KMER_MARKER)
    for i in range(oov + 1, len(texts)):
        t = texts[i]
        if len(t) > m and t.endswith(KMER_MARKER):
            texts[i] = t[:-m]


def _kmers(vocab: Vocab, raw: bytes, oov: int, out: list[int]) -> None:
    """llama.cpp: llm_tokenizer_hybriddna_session::emit_dna_kmers (a short tail is padded
    with 'A'; a k-mer without a token, non-ACGT letters included, becomes <oov>)."""
    seq = raw.translate(_UPPER)
    get = vocab.token_to_id.get
    n = len(seq)
    full = n - n % K
    for i in range(0, full, K):
        out.append(get(seq[i : i + K] + KMER_MARKER, oov))
    if full < n:
        out.append(get(seq[full:].ljust(K, b"A") + KMER_MARKER, oov))


def tokenize(vocab: Vocab, text: bytes, out: list[int]) -> None:
    """llama.cpp: llm_tokenizer_hybriddna_session::tokenize (one raw-text fragment)."""
    t2id = vocab.token_to_id
    begin, end, oov = t2id.get(OPEN_TAG), t2id.get(CLOSE_TAG), t2id.get(OOV)
    if begin is None or end is None or oov is None:  # no DNA pieces: plain BPE
        bpe.tokenize(vocab, text, out)
        return
    pos = 0
    n = len(text)
    while pos < n:
        start = text.find(OPEN_TAG, pos)
        if start == -1:
            bpe.tokenize(vocab, text[pos:], out)
            break
        if start > pos:
            bpe.tokenize(vocab, text[pos:start], out)
        out.append(begin)
        content = start + len(OPEN_TAG)
        close = text.find(CLOSE_TAG, content)
        _kmers(vocab, text[content : n if close == -1 else close], oov, out)
        if close == -1:  # an unclosed tag: the rest of the fragment is DNA, no </dna>
            break
        out.append(end)
        pos = close + len(CLOSE_TAG)
