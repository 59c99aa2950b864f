"""Reference calls that may abort the process, run in a persistent worker process.

``call("model.load_outcome", path, ...)`` runs ``pyggml.reference.model.load_outcome`` in a
child (``python -m pyggml.reference.isolated``).  Requests and responses are pickled over the
child's stdin/stdout, length-prefixed.  When the child dies (GGML_ASSERT/GGML_ABORT, an
uncaught C++ exception), the call returns ``{"aborted": True, "signal": N}`` and the next call
starts a fresh worker.  The child's fd 1 is redirected to its stderr so nothing the reference
prints can corrupt the channel.
"""

from __future__ import annotations

import atexit
import importlib
import os
import pickle
import resource
import struct
import subprocess
import sys
import tempfile
import threading
from typing import Any, BinaryIO

_HDR = struct.Struct("<Q")


def _send(stream: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HDR.pack(len(data)) + data)
    stream.flush()


def _recv(stream: BinaryIO) -> Any:
    hdr = stream.read(_HDR.size)
    if len(hdr) < _HDR.size:
        raise EOFError
    (n,) = _HDR.unpack(hdr)
    data = stream.read(n)
    if len(data) < n:
        raise EOFError
    return pickle.loads(data)


def spawn(module: str, stderr: Any = None) -> subprocess.Popen[bytes]:
    """``python -m module`` with pipes for the channel, importing this checkout's pyggml."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.Popen([sys.executable, "-m", module], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=stderr, env=env)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a server child: it exits when its stdin closes; killed if it does not within 10 s."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()


class Worker:
    """One child process; restarted after it dies."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        if self._stderr is not None:
            self._stderr.close()
        self._stderr = tempfile.TemporaryFile()
        return spawn("pyggml.reference.isolated", stderr=self._stderr)

    def call(self, func: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``pyggml.reference.<func>(*args, **kwargs)`` in the worker.

        Returns its result, or ``{"aborted": True, "signal": N, "stderr": tail}`` if the
        worker died.  An exception raised by the function is re-raised here."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            proc = self._proc
            assert proc.stdin is not None and proc.stdout is not None
            try:
                _send(proc.stdin, (func, args, kwargs))
                kind, value = _recv(proc.stdout)
            except (EOFError, BrokenPipeError, OSError):
                rc = proc.wait()
                self._proc = None
                for pipe in (proc.stdin, proc.stdout):
                    pipe.close()
                # exit_code: the raw status (negative: killed by that signal; "signal" alone
                # cannot tell a signal from an exit status of the same number)
                return {"aborted": True, "signal": -rc if rc < 0 else rc, "exit_code": rc,
                        "stderr": self._tail()}
            if kind == "exc":
                raise RuntimeError(f"reference worker: {value}")
            return value

    def _tail(self, n: int = 2000) -> str:
        try:
            self._stderr.seek(0)
            return self._stderr.read().decode("utf-8", "replace")[-n:]
        except (OSError, ValueError):
            return ""

    def close(self) -> None:
        """End the worker (it exits when its stdin closes)."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is not None:
                stop(proc)
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None


_worker: Worker | None = None


def call(func: str, *args: Any, **kwargs: Any) -> Any:
    """``Worker.call`` on the shared worker of this process."""
    global _worker
    if _worker is None:
        _worker = Worker()
        atexit.register(_worker.close)
    return _worker.call(func, *args, **kwargs)


def serve_channel() -> tuple[BinaryIO, BinaryIO]:
    """In a server child: (requests in, responses out).  The channel keeps the original fd 1;
    fd 1 itself then points at stderr, so nothing the reference prints can corrupt it."""
    chan_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return sys.stdin.buffer, chan_out


def _resolve(func: str) -> Any:
    mod_name, _, fn_name = func.rpartition(".")
    mod = importlib.import_module(f"pyggml.reference.{mod_name}" if mod_name else "pyggml.reference")
    return getattr(mod, fn_name)


def run_forked(func: str, items: list[Any]) -> list[Any]:
    """In the worker: ``pyggml.reference.<func>(item)`` for each item, each in a forked child,
    so that an abort costs a fork instead of a worker restart.  A child that dies gives
    ``{"aborted": True, "signal": N, "exit_code": rc, "stderr": tail}`` (its own stderr);
    an exception raised by the function is re-raised."""
    fn = _resolve(func)
    os.environ.setdefault("GGML_NO_BACKTRACE", "1")  # ggml would run gdb on an abort (slow)
    out: list[Any] = []
    for item in items:
        with tempfile.TemporaryFile() as err:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: never returns into the caller's code
                try:
                    os.close(r)
                    os.dup2(err.fileno(), 2)
                    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file per abort
                    with os.fdopen(w, "wb") as chan:
                        try:
                            result = ("ok", fn(item))
                        except Exception as exc:
                            result = ("exc", f"{type(exc).__name__}: {exc}")
                        _send(chan, result)
                finally:
                    os._exit(0)
            os.close(w)
            with os.fdopen(r, "rb") as chan:
                try:
                    kind, value = _recv(chan)
                except EOFError:
                    kind = None
            _, status = os.waitpid(pid, 0)
            if kind == "exc":
                raise RuntimeError(value)
            if kind is None:
                rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                err.seek(0)
                value = {"aborted": True, "signal": -rc if rc < 0 else rc, "exit_code": rc,
                         "stderr": err.read()[-2000:].decode("utf-8", "replace")}
            out.append(value)
    return out


def _serve() -> None:
    chan_in, chan_out = serve_channel()
    while True:
        try:
            func, args, kwargs = _recv(chan_in)
        except EOFError:
            return
        try:
            result = ("ok", _resolve(func)(*args, **kwargs))
        except Exception as exc:  # reported to the caller, the worker lives on
            result = ("exc", f"{type(exc).__name__}: {exc}")
        _send(chan_out, result)


if __name__ == "__main__":
    _serve()
