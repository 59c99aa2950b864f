"""Backend buffers as the planner sees them: sizes, owners, and which are still alive.

What a recording buffer type (the reference test's dummy backend) observes: every
ggml_backend_buft_alloc_buffer call of a buffer type, in order, and every free.  A buffer is a
serial number (> 0); the ``chunk`` reported for a tensor is the position of its buffer among
the buffer type's live buffers, in allocation order.  llama.cpp: ggml-backend.cpp
ggml_backend_buft_alloc_buffer -- a size-0 request never reaches the buffer type (it gets a
dummy buffer with a NULL base): serial 0 here, never recorded.
"""

from __future__ import annotations


class Buffers:
    """Live backend buffers per buffer type (by the buffer type's first buffer id)."""

    def __init__(self, n_types: int, fail_above: list[int] | None = None) -> None:
        self.size: dict[int, int] = {0: 0}
        self.owner: dict[int, int] = {}
        self.live: list[list[int]] = [[] for _ in range(n_types)]
        self.fail_above = fail_above or [0] * n_types
        self._next = 1
        self.log: list[tuple[str, int, int, int]] = []   # ("alloc"|"free", owner, serial, size)

    def alloc(self, owner: int, size: int) -> int | None:
        """A new buffer of ``size`` bytes; None when the buffer type refuses (alloc_buffer NULL)."""
        if size == 0:
            return 0
        limit = self.fail_above[owner]
        if limit and size > limit:
            return None
        serial = self._next
        self._next += 1
        self.size[serial] = size
        self.owner[serial] = owner
        self.live[owner].append(serial)
        self.log.append(("alloc", owner, serial, size))
        return serial

    def free(self, serial: int) -> None:
        if serial == 0:
            return
        owner = self.owner[serial]
        self.live[owner].remove(serial)
        self.log.append(("free", owner, serial, self.size[serial]))

    def chunk(self, serial: int) -> int | None:
        """Position among the owner's live buffers; None once freed (or for size 0)."""
        if serial <= 0:
            return None
        live = self.live[self.owner[serial]]
        try:
            return live.index(serial)
        except ValueError:
            return None

    def sizes(self, owner: int) -> list[int]:
        return [self.size[s] for s in self.live[owner]]
