"""Allocating every tensor of a ``no_alloc`` context in buffers of one buffer type.

llama.cpp: ggml-alloc.c ggml_backend_alloc_ctx_tensors_from_buft_impl and alloc_tensor_range.
Tensors are taken in creation order; each one without data that is not a view needs
``PAD(alloc size, alignment)`` bytes; a new buffer starts when the current one is not empty and
the tensor would take it past the buffer type's max size (so one tensor larger than the max
still gets a buffer of its own).  Each buffer is then filled by a bump allocator (tallocr);
views get their view_src's buffer (ggml_backend_view_init).  The reference returns one buffer,
or a multi-buffer wrapping several (not a buffer type allocation: never recorded).
"""

from __future__ import annotations

from itertools import accumulate

from pyggml.alloc.buffers import Buffers
from pyggml.alloc.gallocr import State, has_data
from pyggml.alloc.ir import Graph
from pyggml.alloc.tallocr import Tallocr
from pyggml.errors import AllocAbort


def _padded(g: Graph, state: State, alignment: int) -> list[int]:
    """Per tensor, its padded size when it needs memory (no data and no view), else 0."""
    a = alignment
    return [0 if vs >= 0 or (lo is not None and (lo[1] != 0 or lo[2] != 0)) else (sz + a - 1) // a * a
            for lo, vs, sz in zip(state.loc, g.view_src, g.sizes, strict=True)]


def _split(padded: list[int], max_size: int) -> list[tuple[int, int, int]]:
    total = sum(padded)
    if total <= max_size:
        # no running sum ever passes max_size: one buffer (none for nothing to allocate)
        return [(0, len(padded), total)] if total > 0 else []
    ranges: list[tuple[int, int, int]] = []
    first = 0
    cur = 0
    for t, this in enumerate(padded):
        if cur > 0 and cur + this > max_size:
            ranges.append((first, t, cur))
            first = t
            cur = this
        else:
            cur += this
    if cur > 0:
        ranges.append((first, len(padded), cur))
    return ranges


def split_sizes(g: Graph, state: State, alignment: int, max_size: int) -> list[tuple[int, int, int]]:
    """The buffers the reference would allocate: (first tensor, end tensor, size) each."""
    return _split(_padded(g, state, alignment), max_size)


def alloc_ctx_tensors_size(g: Graph, state: State, alignment: int, max_size: int) -> int:
    """ggml_backend_alloc_ctx_tensors_from_buft_size: total bytes, nothing allocated."""
    return sum(r[2] for r in split_sizes(g, state, alignment, max_size))


def alloc_ctx_tensors(g: Graph, state: State, rec: Buffers, owner: int, alignment: int,
                      max_size: int) -> list[int] | None:
    """ggml_backend_alloc_ctx_tensors_from_buft: the buffers (serials) made, None when nothing
    was allocated or a buffer was refused (then those made in this call are freed again; the
    tensors already placed keep pointing into them, as in the reference)."""
    loc, view_src, view_offs, sizes = state.loc, g.view_src, g.view_offs, g.sizes
    made: list[int] = []
    padded = _padded(g, state, alignment)
    for first, end, size in _split(padded, max_size):
        serial = rec.alloc(owner, size)
        if serial is None:
            for s in made:
                rec.free(s)
            return None
        made.append(serial)
        # a Tallocr over the buffer (base 0: the first offset is 0), bumped inline
        a = Tallocr(size, alignment).alignment
        n = end - first
        if loc[first:end].count(None) == n and view_src[first:end].count(-1) == n:
            # every tensor of the range gets memory, one after another: the offsets are the
            # running sums of the padded sizes (which add up to the buffer size)
            loc[first:end] = [(owner, serial, o) for o in accumulate(padded[first:end - 1], initial=0)]
            continue
        offset = 0
        for t in range(first, end):
            lo = loc[t]
            if lo is None or (lo[1] == 0 and lo[2] == 0):  # no data
                vs = view_src[t]
                if vs < 0:
                    if lo is not None:
                        # ggml_backend_tensor_alloc asserts the tensor has no buffer
                        raise AllocAbort("GGML_ASSERT(tensor->buffer == NULL) failed")
                    # ggml_tallocr_alloc
                    need = (sizes[t] + a - 1) // a * a
                    if offset + need > size:
                        raise AllocAbort("not enough space in the buffer")
                    loc[t] = (owner, serial, offset)
                    offset += need
                elif lo is None:
                    _view_init(loc, t, vs, view_offs[t])
    # a view of a pre-allocated tensor got its data at creation; view_init only adds the
    # buffer, which changes nothing the planner reads
    return made or None


def _view_init(loc: list, t: int, vs: int, offs: int) -> None:
    base = loc[vs]
    # ggml_backend_view_init asserts the view_src has a buffer and data
    if base is None or not has_data(base):
        raise AllocAbort("GGML_ASSERT(tensor->view_src->buffer != NULL) failed")
    loc[t] = (base[0], base[1], base[2] + offs)


# -- real contexts --------------------------------------------------------------------------

def context_ir(ctx: object) -> tuple[Graph, State, list]:
    """Every tensor of a ``pyggml.ggml.Context`` in creation order (ggml_get_first_tensor /
    ggml_get_next_tensor) as IR tensors, their memory state, and the pointers."""
    from pyggml._native import ggml
    from pyggml.alloc import cgraph

    lib = ggml()
    cptr = ctx.ptr  # type: ignore[attr-defined]
    ptrs = []
    p = lib.ggml_get_first_tensor(cptr)
    while p != cgraph.NULL:
        ptrs.append(p)
        p = lib.ggml_get_next_tensor(cptr, p)
    ids = {cgraph.addr(q): i for i, q in enumerate(ptrs)}
    g = Graph()
    loc: list = []
    for q in ptrs:
        vs = ids.get(cgraph.addr(q.view_src), -2) if q.view_src != cgraph.NULL else -1
        g.names.append(cgraph.name(q))
        g.types.append(int(q.type))
        g.ne.append(tuple(int(x) for x in q.ne))  # type: ignore[arg-type]
        g.nb.append(tuple(int(x) for x in q.nb))  # type: ignore[arg-type]
        g.ops.append(int(q.op))
        g.srcs.append((-1,) * 10)
        # a view of a tensor in another context: its own data decides (-2 never happens for
        # ggml's own views, which live in their view_src's context or point across contexts)
        g.view_src.append(vs if vs >= 0 else -1)
        g.view_offs.append(int(q.view_offs))
        g.flags.append(int(q.flags))
        pre = q.data != cgraph.NULL or q.buffer != cgraph.NULL
        g.preallocated.append(pre)
        g.sizes.append(cgraph.nbytes(q))
        loc.append((-1, -1, 1) if q.data != cgraph.NULL else ((-1, 0, 0) if pre else None))
    return g, State(loc), ptrs


def plan_ctx_tensors(ctx: object, buft: object) -> list[tuple[int, int, int]]:
    """The buffers ggml_backend_alloc_ctx_tensors_from_buft would make for ``ctx`` in ``buft``
    (a ``pyggml.ggml.BufferType``): (first tensor index, end index, size) each."""
    g, state, _ = context_ir(ctx)
    return split_sizes(g, state, buft.alignment, buft.max_size)  # type: ignore[attr-defined]


def alloc_ctx_tensors_real(ctx: object, buft: object) -> list:
    """Allocate every unallocated tensor of the ``no_alloc`` context ``ctx`` in new buffers of
    ``buft``, split as the reference splits them; the ``pyggml.ggml.Buffer`` s (empty: nothing
    to allocate).  Views get their view_src's memory."""
    from pyggml._native import ffi, ggml
    from pyggml.alloc import cgraph
    from pyggml.errors import AllocError

    if not ctx.no_alloc:  # type: ignore[attr-defined]
        # GGML_ASSERT(ggml_get_no_alloc(ctx) == true)
        raise AllocError("alloc_ctx_tensors needs a no_alloc context")
    lib = ggml()
    g, state, ptrs = context_ir(ctx)
    alignment = buft.alignment  # type: ignore[attr-defined]
    buffers = []
    for first, end, size in split_sizes(g, state, alignment, buft.max_size):  # type: ignore[attr-defined]
        buf = buft.alloc_buffer(size)  # type: ignore[attr-defined]
        buffers.append(buf)
        base = cgraph.addr(lib.ggml_backend_buffer_get_base(buf.ptr))
        tallocr = Tallocr(size, alignment, base)
        for t in range(first, end):
            p = ptrs[t]
            status = 0
            if p.view_src != cgraph.NULL and p.buffer == cgraph.NULL and (
                    p.view_src.buffer == cgraph.NULL or p.view_src.data == cgraph.NULL):
                # ggml_backend_view_init would abort
                raise AllocError(f"view {cgraph.name(p)!r} of a tensor without memory")
            if p.data == cgraph.NULL:
                if p.view_src == cgraph.NULL:
                    if p.buffer != cgraph.NULL:  # ggml_backend_tensor_alloc would abort
                        raise AllocError(f"tensor {cgraph.name(p)!r} has a buffer but no data")
                    off = tallocr.alloc(int(lib.ggml_backend_buffer_get_alloc_size(buf.ptr, p)))
                    status = lib.ggml_backend_tensor_alloc(buf.ptr, p, ffi.cast("char *", base) + off)
                elif p.buffer == cgraph.NULL:
                    status = lib.ggml_backend_view_init(p)
            elif p.view_src != cgraph.NULL and p.buffer == cgraph.NULL:
                status = lib.ggml_backend_view_init(p)
            if status != 0:
                raise AllocError(f"initializing tensor {cgraph.name(p)!r} failed ({status})")
        ctx.keep_alive(buf)  # type: ignore[attr-defined]
    return buffers
