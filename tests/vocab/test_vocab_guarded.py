"""``vocab_guarded.forked`` and the vocab parity's random texts: only a death by signal is the
reference's abort; a Python error in the child is a failure (a mismatch), never "aborted"."""

from __future__ import annotations

import os
import random
import signal

from pyggml.parity.vocab import random_texts
from pyggml.reference import vocab_guarded as vg


def _raise() -> None:
    raise ValueError("boom")


def _exit_3() -> None:
    os._exit(3)


def test_forked_result_and_signals():
    assert vg.forked(lambda: [1, 2]) == [1, 2]
    assert vg.forked(os.abort) == vg.ABORTED
    assert vg.forked(lambda: os.kill(os.getpid(), signal.SIGSEGV)) == vg.ABORTED


def test_forked_python_error_is_not_an_abort():
    out = vg.forked(_raise)
    assert out != vg.ABORTED and out.startswith(vg.FAILED) and "ValueError: boom" in out
    out = vg.forked(_exit_3)
    assert out != vg.ABORTED and out.startswith(vg.FAILED) and "status 3" in out


def test_random_texts_cover_every_byte():
    texts = random_texts(random.Random(0), 3000, [])
    seen = set(b"".join(texts))
    assert {0xF4, 0xF5, 0xF6, 0xF7} <= seen
    assert seen == set(range(256))
