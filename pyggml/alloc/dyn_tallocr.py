"""The dynamic tensor allocator: free blocks over up to 16 chunks of a virtual buffer.

llama.cpp: ggml/src/ggml-alloc.c ``struct ggml_dyn_tallocr`` and ggml_dyn_tallocr_* (alloc,
free_bytes, new_chunk, insert_block, remove_block, reset, max_size).  An address is a pair
``(chunk, offset)``.  Each chunk keeps its free blocks sorted by offset in two parallel lists
(offsets, sizes) and a high-water mark ``max_size`` (the size of the backend buffer that
``reserve`` gives the chunk).

Plain ints and lists only: this runs once per tensor of a ~1,000-node graph per plan.
"""

from __future__ import annotations

from bisect import bisect_left

from pyggml.errors import AllocAbort

SIZE_MAX = (1 << 64) - 1
HALF_SIZE_MAX = SIZE_MAX // 2          # SIZE_MAX/2: the clamp for chunk sizes
MAX_CHUNKS = 16                        # GGML_VBUFFER_MAX_CHUNKS
MAX_FREE_BLOCKS = 256                  # MAX_FREE_BLOCKS
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def pad(size: int, alignment: int) -> int:
    """aligned_offset(NULL, size, alignment): round up to a multiple of the power-of-2 alignment."""
    return (size + alignment - 1) & ~(alignment - 1)


def _as_int64(x: int) -> int:
    # the reuse factor is computed in size_t (wrapping) and stored in an int64_t
    x &= SIZE_MAX
    return x - (1 << 64) if x >> 63 else x


class Chunk:
    """``struct tallocr_chunk``: free blocks sorted by offset, and the high-water mark."""

    __slots__ = ("offs", "sizes", "max_size")

    def __init__(self, size: int) -> None:
        self.offs = [0]
        self.sizes = [size]
        self.max_size = 0

    def blocks(self) -> list[tuple[int, int]]:
        return list(zip(self.offs, self.sizes, strict=True))

    def insert_block(self, offset: int, size: int) -> None:
        # ggml_dyn_tallocr_insert_block: asserts there is room, keeps the list sorted by offset
        if len(self.offs) >= MAX_FREE_BLOCKS:
            raise AllocAbort("out of free blocks")
        offs = self.offs
        # the first block at or past offset: bisect, checked against the linear scan's
        # answer (the blocks stay sorted by offset, so the check always holds)
        pos = bisect_left(offs, offset)
        if pos and max(offs[:pos]) >= offset:
            pos = 0
            n = len(offs)
            while pos < n and offs[pos] < offset:
                pos += 1
        offs.insert(pos, offset)
        self.sizes.insert(pos, size)

    def remove_block(self, idx: int) -> None:
        del self.offs[idx]
        del self.sizes[idx]


class DynTallocr:
    """``struct ggml_dyn_tallocr`` (ggml_dyn_tallocr_new clamps max size to SIZE_MAX/2)."""

    __slots__ = ("alignment", "max_chunk_size", "chunks")

    def __init__(self, alignment: int, max_size: int) -> None:
        if alignment <= 0 or alignment & (alignment - 1):
            raise AllocAbort(f"alignment {alignment} is not a power of 2")
        self.alignment = alignment
        # quirk: MIN(max_buffer_size, SIZE_MAX/2) so chunk arithmetic never overflows
        self.max_chunk_size = min(max_size, HALF_SIZE_MAX)
        self.chunks: list[Chunk] = []

    @property
    def n_chunks(self) -> int:
        return len(self.chunks)

    def reset(self) -> None:
        self.chunks = []

    def _new_chunk(self, min_size: int) -> int:
        # ggml_dyn_tallocr_new_chunk
        if len(self.chunks) >= MAX_CHUNKS:
            return -1
        size = max(min_size, self.max_chunk_size)
        # quirk: the 16th (last possible) chunk is made virtually endless, SIZE_MAX/2, so
        # allocation never fails for lack of chunks; the backend may then refuse the buffer
        if len(self.chunks) == MAX_CHUNKS - 1:
            size = HALF_SIZE_MAX
        self.chunks.append(Chunk(size))
        return len(self.chunks) - 1

    def _search(self, size: int) -> tuple[int, int]:
        """The (chunk, block) ggml_dyn_tallocr_alloc takes ``size`` bytes from: its two passes
        over every chunk, else a new chunk."""
        chunks = self.chunks
        best_chunk = -1
        best_block = -1
        # pass 1: best fit over every chunk's free blocks except the last one.  Quirks: the
        # best size is reset per chunk, so a fitting block in a later chunk beats a tighter one
        # in an earlier chunk (hence: the last chunk with a fit wins; scan from the end); and
        # the test is `<=`, so of equal sizes the later block wins.
        for c in range(len(chunks) - 1, -1, -1):
            sizes = chunks[c].sizes
            last = len(sizes) - 1
            if last <= 0:
                continue
            best_size = SIZE_MAX
            for i in range(last):
                s = sizes[i]
                if s >= size and s <= best_size:
                    best_block = i
                    best_size = s
            if best_block != -1:
                best_chunk = c
                break
        if best_block == -1:
            # pass 2: each chunk's last block (the one that may grow the chunk).  Prefer the
            # smallest non-negative reuse (max_size - offset - size), else the least negative.
            best_reuse = _INT64_MIN
            for c, chunk in enumerate(chunks):
                sizes = chunk.sizes
                if sizes and sizes[-1] >= size:
                    reuse = chunk.max_size - chunk.offs[-1] - size
                    if not _INT64_MIN <= reuse <= _INT64_MAX:
                        reuse = _as_int64(reuse)
                    if (best_reuse < 0 and reuse > best_reuse) or (reuse >= 0 and reuse < best_reuse):
                        best_chunk = c
                        best_block = len(sizes) - 1
                        best_reuse = reuse
        if best_block == -1:
            best_chunk = self._new_chunk(size)
            best_block = 0
        if best_chunk == -1:
            # GGML_ABORT("graph allocation: failed to reserve memory")
            raise AllocAbort("graph allocation: failed to reserve memory")
        return best_chunk, best_block

    def alloc(self, size: int) -> tuple[int, int]:
        """ggml_dyn_tallocr_alloc: the (chunk, offset) for ``size`` bytes (padded)."""
        a = self.alignment
        size = (size + a - 1) & ~(a - 1)
        chunks = self.chunks
        if len(chunks) == 1:
            # the usual case, one chunk: the same two passes without the loops over chunks
            chunk = chunks[0]
            sizes = chunk.sizes
            last = len(sizes) - 1
            best_block = -1
            if last == 1:
                s = sizes[0]
                if s >= size and s <= SIZE_MAX:
                    best_block = 0
            elif last > 1:
                best_size = SIZE_MAX
                for i in range(last):
                    s = sizes[i]
                    if s >= size and s <= best_size:
                        best_block = i
                        best_size = s
            if best_block == -1 and last >= 0 and sizes[last] >= size:
                reuse = chunk.max_size - chunk.offs[last] - size
                if not _INT64_MIN <= reuse <= _INT64_MAX:
                    reuse = _as_int64(reuse)
                if reuse > _INT64_MIN:  # pass 2's test against its starting best_reuse
                    best_block = last
            best_chunk = 0
        else:
            best_chunk = best_block = -1
        if best_block == -1:
            best_chunk, best_block = self._search(size)
        chunk = chunks[best_chunk]
        offs, sizes = chunk.offs, chunk.sizes
        offset = offs[best_block]
        end = offset + size
        left = sizes[best_block] - size
        if left == 0:
            del offs[best_block]
            del sizes[best_block]
        else:
            offs[best_block] = end
            sizes[best_block] = left
        if end > chunk.max_size:
            chunk.max_size = end
        return best_chunk, offset

    def free_bytes(self, chunk_id: int, offset: int, size: int) -> None:
        """ggml_dyn_tallocr_free_bytes: give back ``size`` bytes (padded) at (chunk, offset)."""
        a = self.alignment
        size = (size + a - 1) & ~(a - 1)
        chunk = self.chunks[chunk_id]
        offs, sizes = chunk.offs, chunk.sizes
        n = len(offs)
        end = offset + size
        # merge with the block that ends at offset (and then its successor), or with the one
        # that starts right after the freed range (and then its predecessor); the first match
        # in offset order wins
        for i in range(n):
            bo = offs[i]
            bs = sizes[i]
            if bo + bs == offset:
                bs += size
                if i < n - 1 and bo + bs == offs[i + 1]:
                    sizes[i] = bs + sizes[i + 1]
                    del offs[i + 1]
                    del sizes[i + 1]
                else:
                    sizes[i] = bs
                return
            if end == bo:
                offs[i] = offset
                if i > 0 and offs[i - 1] + sizes[i - 1] == offset:
                    sizes[i - 1] += bs + size
                    del offs[i]
                    del sizes[i]
                else:
                    sizes[i] = bs + size
                return
        chunk.insert_block(offset, size)
