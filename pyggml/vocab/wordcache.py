"""Per-chunk result caching shared by the tokenizers.

Where a tokenizer's text splits into chunks that tokenize independently (BPE words, WPM
space-separated chunks, SPM runs before a ``▁``), each chunk's ids are cached per vocab.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

CACHE_LIMIT = 200_000  # chunks kept before the cache starts over


def extend_cached(cache: dict[bytes, list[int]], chunks: Iterable[bytes],
                  tokenize_chunk: Callable[[bytes], list[int]], out: list[int]) -> None:
    """Append the ids of every non-empty chunk to ``out``, computing each new chunk once."""
    for chunk in chunks:
        if not chunk:
            continue
        ids = cache.get(chunk)
        if ids is None:
            ids = tokenize_chunk(chunk)
            if len(cache) > CACHE_LIMIT:
                cache.clear()
            cache[chunk] = ids
        out.extend(ids)
