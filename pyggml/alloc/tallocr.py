"""The bump allocator over one backend buffer (llama.cpp: ggml-alloc.c ggml_tallocr_new,
ggml_tallocr_alloc): tensors go one after another, each padded to the buffer's alignment."""

from __future__ import annotations

from pyggml.errors import AllocAbort


class Tallocr:
    """``struct ggml_tallocr`` over a buffer of ``size`` bytes whose base address is ``base``."""

    __slots__ = ("size", "base", "alignment", "offset")

    def __init__(self, size: int, alignment: int, base: int = 0) -> None:
        if alignment <= 0 or alignment & (alignment - 1):
            raise AllocAbort(f"alignment {alignment} is not a power of 2")
        self.size = size
        self.base = base
        self.alignment = alignment
        # aligned_offset(base, 0, align): the first offset whose address is aligned
        self.offset = (alignment - base % alignment) % alignment

    def alloc(self, alloc_size: int) -> int:
        """The offset for a tensor of ``alloc_size`` bytes; aborts when it does not fit."""
        a = self.alignment
        size = (alloc_size + a - 1) // a * a
        if self.offset + size > self.size:
            # GGML_ABORT("not enough space in the buffer")
            raise AllocAbort("not enough space in the buffer")
        offset = self.offset
        self.offset += size
        return offset
