"""Lifetime of C objects that numpy views may point into.

``close()`` ends the Python API's use of an object at once; the C memory itself is released
when the last Python reference to the owner goes (the wrapper, its tensors, numpy views of
their data).  So a view taken before ``Context.free()`` stays valid instead of pointing into
freed memory, and no use through the API can reach a freed pointer.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from pyggml.errors import GGMLError


class Owner:
    """Holds one C pointer and the function that frees it."""

    __slots__ = ("ptr", "what", "closed", "__weakref__")

    def __init__(self, ptr: Any, free: Callable[[Any], None], what: str, memory: Any = None) -> None:
        self.ptr = ptr
        self.what = what
        self.closed = False
        # ``memory`` (Python-allocated storage the C object lives in, or owners of C objects it
        # uses) is released only after ``free``
        weakref.finalize(self, _release, free, ptr, memory)

    def close(self) -> None:
        self.closed = True

    def check(self) -> Any:
        if self.closed:
            raise GGMLError(f"{self.what} was freed")
        return self.ptr


def _release(free: Callable[[Any], None], ptr: Any, memory: Any) -> None:
    free(ptr)
    del memory


# Buffers whose memory a live pyggml object controls, by address of the ggml_backend_buffer:
# pyggml Buffer objects (their own memory) and graph allocators (buffers they allocated for
# the current generation of their graphs).  A tensor in any other buffer is not read.
BUFFERS: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()


class NumpyHolder:
    """Base object of a zero-copy numpy view: describes the memory and keeps its owner alive."""

    __slots__ = ("__array_interface__", "owner")

    def __init__(self, interface: dict, owner: Any) -> None:
        self.__array_interface__ = interface
        self.owner = owner
