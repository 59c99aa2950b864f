"""Reference vocab calls that may abort, each run in a forked child of a small server process.

The reference aborts on some normal inputs (an SPM/UGM vocab without ``<0xXX>`` byte tokens
throws ``std::out_of_range`` from ``byte_to_token`` across the C boundary; a NONE vocab hits
``GGML_ABORT`` in ``impl::tokenize``; ``token_get_attr`` asserts on NONE).  The server
(``python -m pyggml.reference.vocab_guarded``) keeps the last vocabulary loaded and forks once
per call, so a crash costs neither a reload (as a fresh ``pyggml.reference.isolated`` worker
would) nor a fork of the caller, whose page tables can be gigabytes after large vocabularies.
"""

from __future__ import annotations

import atexit
import faulthandler
import functools
import os
import pickle
import subprocess
from collections.abc import Callable
from typing import Any

from .isolated import _recv, _send, serve_channel, spawn, stop

ABORTED = "aborted"
FAILED = "failed: "
_METHODS = {"tokenize", "detokenize", "token_to_piece", "info"}


def forked(fn: Callable[[], Any]) -> Any:
    """``fn()`` in a child process: its (picklable) result; ``ABORTED`` only if the child was
    killed by a signal (the reference's abort, a crash); otherwise (a Python exception in the
    child, an exit without a result) a ``FAILED``-prefixed text: never equal to a result or to
    ``ABORTED``, so the case it answers is a mismatch, not an abort."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 3
        try:
            os.close(r)
            faulthandler.disable()  # an abort here is the outcome, not a crash to report
            os.environ["GGML_NO_BACKTRACE"] = "1"  # ggml would otherwise run gdb on abort
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            try:
                out: tuple[str, Any] = ("ok", fn())
            except BaseException as exc:  # noqa: BLE001 - reported to the parent as a failure
                out = ("raised", f"{type(exc).__name__}: {exc}")
            data = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(w, "wb") as f:
                f.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return ABORTED
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    if code != 0 or not data:
        return FAILED + f"the reference call's child exited with status {code} and no result"
    kind, value = pickle.loads(data)
    if kind == "ok":
        return value
    return FAILED + f"python error in the reference call: {value}"


class _Client:
    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    def call(self, path: str, method: str, *args: Any) -> Any:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = spawn("pyggml.reference.vocab_guarded")
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            _send(proc.stdin, (str(path), method, args))
            kind, value = _recv(proc.stdout)
        except (EOFError, BrokenPipeError, OSError):
            self.close()
            raise RuntimeError("the vocab_guarded server died unexpectedly") from None
        if kind == "exc":
            raise RuntimeError(f"vocab_guarded server: {value}")
        return value

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop(proc)


_client: _Client | None = None


def call(path: str | os.PathLike[str], method: str, *args: Any) -> Any:
    """``RefVocab(path).<method>(*args)`` in a forked child: the result or ``ABORTED``."""
    global _client
    if _client is None:
        _client = _Client()
        atexit.register(_client.close)
    return _client.call(os.fspath(path), method, *args)


def tokenize(path: str | os.PathLike[str], text: bytes, add_special: bool, parse_special: bool) -> Any:
    return call(path, "tokenize", text, add_special, parse_special)


def detokenize(path: str | os.PathLike[str], tokens: list[int], remove_special: bool,
               unparse_special: bool) -> Any:
    return call(path, "detokenize", tokens, remove_special, unparse_special)


def token_to_piece(path: str | os.PathLike[str], token: int, lstrip: int, special: bool) -> Any:
    return call(path, "token_to_piece", token, lstrip, special)


def info(path: str | os.PathLike[str]) -> Any:
    return call(path, "info")


def _serve() -> None:
    from .vocab import RefVocab

    chan_in, chan_out = serve_channel()
    loaded: tuple[str, RefVocab] | None = None
    while True:
        try:
            path, method, args = _recv(chan_in)
        except EOFError:
            return
        try:
            if loaded is None or loaded[0] != path:
                if loaded is not None:
                    loaded[1].close()
                loaded = None
                loaded = (path, RefVocab(path))
            if method not in _METHODS:
                raise ValueError(f"not a guarded RefVocab method: {method}")
            result = ("ok", forked(functools.partial(getattr(loaded[1], method), *args)))
        except Exception as exc:  # reported to the caller, the server lives on
            result = ("exc", f"{type(exc).__name__}: {exc}")
        _send(chan_out, result)


if __name__ == "__main__":
    _serve()
