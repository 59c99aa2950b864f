"""Memory statuses and how two of them combine (hybrid memories such as iSWA).

llama.cpp: src/llama-memory.{h,cpp} llama_memory_status, llama_memory_status_combine,
llama_memory_status_is_fail.
"""

from __future__ import annotations

from enum import IntEnum


class MemoryStatus(IntEnum):
    SUCCESS = 0
    NO_UPDATE = 1
    FAILED_PREPARE = 2
    FAILED_COMPUTE = 3

    @property
    def is_fail(self) -> bool:
        return self in (MemoryStatus.FAILED_PREPARE, MemoryStatus.FAILED_COMPUTE)


def combine(s0: MemoryStatus, s1: MemoryStatus) -> MemoryStatus:
    """A failure wins (the first one, checking ``s0`` first); otherwise SUCCESS if either side has
    an update, else NO_UPDATE."""
    for s in (s0, s1):
        if s.is_fail:
            return s
    if MemoryStatus.SUCCESS in (s0, s1):
        return MemoryStatus.SUCCESS
    return MemoryStatus.NO_UPDATE
