"""The reference's GBNF parser and grammar runtime (src/llama-grammar.cpp) through the probe.

Outcomes are canonical values shared with ``pyggml.parity.grammar``:
- ``parse_outcome(src)``: ``{"ok", "symbols": [[name, id], ...] (std::map order), "rules",
  "error"}`` -- the error is the ``what()`` the parser prints to stderr;
- ``session(src, root, steps)``: create the grammar (vocab NULL unless a model is given), then
  run accept steps, recording ``{"stacks": canon_stacks(...), "partial"}`` (the stacks as
  (rule, offset) pairs, or a digest of them when large) or the error after each.

Grammars can crash the reference (deep nesting overflows its recursive parser) or make it run
forever (``{m,n}`` with n < m); ``isolated_call`` runs one call in a throwaway subprocess with
a time and memory limit and reports ``{"abnormal": "timeout"|"signal N"}`` instead.
"""

from __future__ import annotations

import array
import hashlib
import os
import pickle
import resource
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._native import ffi, probe
from ._canon import uncanon_str
from ._probe import take_json, take_log

_PREFIX = b"parse: error parsing grammar: "

Step = tuple[int, int, bytes]  # (kind: 0 accept_str / 1 accept_token / 2 accept_impl, token, piece)


def _cstr(b: bytes | str) -> bytes:
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogateescape")
    nul = b.find(b"\0")
    return b if nul < 0 else b[:nul]


def _error_text(stderr: bytes, src: bytes) -> str | None:
    """The ``err.what()`` inside ``parse: error parsing grammar: <what>\\n\\n<src>\\n``."""
    if not stderr.startswith(_PREFIX):
        return None
    tail = b"\n\n" + src + b"\n"
    body = stderr[len(_PREFIX):]
    if body.endswith(tail):
        body = body[: -len(tail)]
    return body.decode("utf-8", "surrogateescape")


def parse_outcome(src: bytes | str) -> dict[str, Any]:
    """llama_grammar_parser::parse on ``src`` (a C string: cut at the first NUL)."""
    src = _cstr(src)
    out = ffi.new("char **")
    probe().ps_grammar_parse(src, out)
    j = take_json(out)
    if "exception" in j:
        raise RuntimeError("probe: " + uncanon_str(j["exception"]).decode("utf-8", "replace"))
    return {
        "ok": bool(j["ok"]),
        "symbols": [[name, sid] for name, sid in j["symbols"]],
        "rules": j["rules"],
        "error": None if j["ok"] else _error_text(uncanon_str(j["stderr"]), src),
    }


# stack sets up to this many int32 words are compared element by element (readable diffs);
# larger ones by count, size and digest of the canonical bytes
_STACKS_INLINE_WORDS = 256


def canon_stacks(raw: bytes) -> Any:
    """The canonical value of a stack set given as the probe's ``stacks_raw`` bytes (int32 LE
    words: per stack its length, then (rule id, element offset) per element, bottom first).
    pyggml's side builds the same bytes (``Grammar.stacks_raw``), so equal stacks in the same
    order give equal values."""
    words = array.array("i")
    words.frombytes(raw)
    if sys.byteorder != "little":
        words.byteswap()
    if len(words) <= _STACKS_INLINE_WORDS:
        out: list[list[list[int]]] = []
        i = 0
        while i < len(words):
            n = words[i]
            out.append([[words[i + 1 + 2 * k], words[i + 2 + 2 * k]] for k in range(n)])
            i += 1 + 2 * n
        return out
    n_stacks, i = 0, 0
    while i < len(words):
        n_stacks += 1
        i += 1 + 2 * words[i]
    return {"n": n_stacks, "words": len(words), "blake2b": hashlib.blake2b(raw, digest_size=12).hexdigest()}


def _state(j: dict[str, Any]) -> dict[str, Any]:
    return {"stacks": canon_stacks(bytes.fromhex(j["stacks_raw"])), "partial": j["partial"]}


class Grammar:
    """A live reference grammar (llama_grammar_init_impl); free with ``close``."""

    def __init__(self, src: bytes | str, root: str = "root", *, model: Any = None, lazy: bool = False,
                 trigger_patterns: Sequence[str] = (), trigger_tokens: Sequence[int] = ()) -> None:
        lib = probe()
        take_log()
        out = ffi.new("char **")
        pats = [ffi.new("char[]", p.encode("utf-8")) for p in trigger_patterns]
        pat_arr = ffi.new("const char *[]", pats) if pats else ffi.NULL
        tok_arr = ffi.new("int32_t[]", list(trigger_tokens)) if trigger_tokens else ffi.NULL
        self._lib = lib
        self._src = _cstr(src)
        self._g = lib.ps_grammar_init(model if model is not None else ffi.NULL, _cstr(src),
                                      root.encode("utf-8"), int(lazy), pat_arr, len(pats), tok_arr,
                                      len(trigger_tokens), out)
        self.info = take_json(out)
        self.log = take_log()

    @property
    def ok(self) -> bool:
        return self._g != ffi.NULL

    def init_error(self) -> str:
        """The reference's reason for returning NULL: the parse error, else its log line."""
        err = _error_text(uncanon_str(self.info.get("stderr", "s:")), self._src)
        return err if err is not None else self.log.strip()

    def state(self) -> dict[str, Any]:
        raw = self._lib.ps_grammar_state(self._g)
        j = take_json(ffi.new("char **", raw))
        return _state(j)

    def full_state(self) -> dict[str, Any]:
        """The state plus the lazy-trigger fields (``awaiting_trigger``, ``trigger_buffer``)."""
        raw = self._lib.ps_grammar_state(self._g)
        j = take_json(ffi.new("char **", raw))
        return {**_state(j), "awaiting_trigger": j["awaiting_trigger"], "trigger_buffer": j["trigger_buffer"]}

    def accept(self, kind: int, token: int, piece: bytes) -> dict[str, Any]:
        """One accept step; returns the state after it, plus ``error`` if the reference threw."""
        out = ffi.new("char **")
        ok = self._lib.ps_grammar_accept(self._g, kind, token, piece, len(piece), out)
        j = take_json(out)
        res = _state(j["state"])
        if not ok:
            res["error"] = uncanon_str(j["error"]).decode("utf-8", "surrogateescape")
        return res

    def clone(self) -> Grammar:
        """llama_grammar_clone_impl."""
        out = Grammar.__new__(Grammar)
        out._lib, out._src, out.info, out.log = self._lib, self._src, self.info, self.log
        out._g = self._lib.ps_grammar_clone(self._g)
        return out

    def accept_chars(self, text: bytes) -> bool:
        """llama_grammar_accept_str once per UTF-8 character of ``text``, all inside one probe
        call and with no state dump (for timing).  False when the reference threw."""
        out = ffi.new("char **")
        ok = self._lib.ps_grammar_accept(self._g, 3 | 16, 0, text, len(text), out)
        take_json(out)
        return bool(ok)

    def apply_keep(self, ids: Any, keep: Any) -> None:
        """llama_grammar_apply_impl into a caller's cffi buffers (for timing)."""
        if not self._lib.ps_grammar_apply(self._g, ids, len(keep), keep):
            raise RuntimeError("probe: llama_grammar_apply_impl threw")

    def apply(self, ids: Sequence[int]) -> list[bool]:
        """llama_grammar_apply_impl: which tokens keep a finite logit."""
        return self.apply_np(np.asarray(ids, dtype=np.int32)).tolist()

    def apply_np(self, ids: np.ndarray) -> np.ndarray:
        """llama_grammar_apply_impl over ``ids`` (int32): (n,) bool, False where the reference
        sets -inf.  The buffers go to the probe without per-token Python work."""
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        n = len(ids)
        keep = np.zeros(n, dtype=np.uint8)
        ok = self._lib.ps_grammar_apply(self._g, ffi.cast("int32_t *", ffi.from_buffer(ids)), n,
                                        ffi.cast("uint8_t *", ffi.from_buffer(keep)))
        if not ok:
            raise RuntimeError("probe: llama_grammar_apply_impl threw")
        return keep.view(bool)

    def close(self) -> None:
        if self._g != ffi.NULL:
            self._lib.ps_grammar_free(self._g)
            self._g = ffi.NULL

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def n_stacks(stacks: Any) -> int:
    """How many stacks a ``canon_stacks`` value holds."""
    return stacks["n"] if isinstance(stacks, dict) else len(stacks)


def session(src: bytes | str, root: str, steps: Sequence[Step],
            max_stacks: int | None = None) -> dict[str, Any]:
    """Create a grammar (no vocab) and run ``steps``; stops after the first error.  With
    ``max_stacks``, the session ends at the first step that leaves more stacks than that:
    ``"capped"`` holds its index and that step's state is left out."""
    g = Grammar(src, root)
    if not g.ok:
        return {"init": {"ok": False, "error": g.init_error()}}
    res: dict[str, Any] = {"init": {"ok": True, "rules": g.info["rules"], **_state(g.info["state"])},
                           "steps": []}
    for k, (kind, token, piece) in enumerate(steps):
        st = g.accept(kind, token, piece)
        if max_stacks is not None and n_stacks(st["stacks"]) > max_stacks:
            res["capped"] = k
            break
        res["steps"].append(st)
        if "error" in st:
            break
    g.close()
    return res


def ending(src: bytes | str, root: str, steps: Sequence[Step]) -> dict[str, Any]:
    """How creating the grammar and running ``steps`` ends, for grammars that may exhaust
    memory (run it with ``isolated_call``): ``{"created": False, "error"}`` (the parse error,
    the log line or the C++ exception init threw), ``{"created": True, "steps_done", "error"}``
    (the error of the step after ``steps_done`` completed steps, None when all completed)."""
    try:
        g = Grammar(src, root)
        if not g.ok:
            exc = g.info.get("exception")
            err = uncanon_str(exc).decode("utf-8", "replace") if exc is not None else g.init_error()
            return {"created": False, "error": err}
        for k, (kind, token, piece) in enumerate(steps):
            st = g.accept(kind, token, piece)
            if "error" in st:
                return {"created": True, "steps_done": k, "error": st["error"]}
        g.close()
        return {"created": True, "steps_done": len(steps), "error": None}
    except MemoryError:  # the address-space cap reached in Python's own allocations
        return {"created": None, "error": "MemoryError"}


def init_outcome(src: bytes | str, root: str = "root") -> dict[str, Any]:
    """llama_grammar_init_impl without a vocab: whether it returned a grammar, and the C++
    exception it threw if any (e.g. ``std::bad_alloc`` under a memory limit)."""
    g = Grammar(src, root)
    try:
        exc = g.info.get("exception")
        text = None if exc is None else uncanon_str(exc)
        return {"ok": g.ok, "exception": text.decode("utf-8", "replace") if isinstance(text, bytes) else text}
    finally:
        g.close()


def vocab_pieces(model: Any) -> tuple[list[bytes], list[bool]]:
    """Every token's piece and EOG flag as llama_grammar_apply_impl reads them."""
    out = ffi.new("char **")
    if not probe().ps_grammar_vocab_pieces(model, out):
        raise RuntimeError("probe: could not read the vocab")
    j = take_json(out)
    return [bytes.fromhex(p) for p in j["pieces"]], [bool(e) for e in j["eog"]]


# --- one-shot subprocess for grammars that crash or hang the reference ------------------------
def isolated_call(func: str, *args: Any, timeout: float = 5.0, mem_mb: int = 2048,
                  cpu_s: int | None = None) -> Any:
    """Run ``pyggml.reference.grammar.<func>(*args)`` in a fresh child with a time limit and an
    address-space limit; returns its result or ``{"abnormal": "timeout" | "signal N" | ...}``.

    ``cpu_s``: a CPU-time limit instead (RLIMIT_CPU: the child dies by SIGXCPU, "signal 24"),
    which does not depend on how loaded the machine is; ``timeout`` then only guards the wall
    clock against a child that blocks without computing."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # no gdb backtrace on an abort (a debugger under the address-space limit crashes and
    # leaves its core file behind), and no core files of the child either
    env["GGML_NO_BACKTRACE"] = "1"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem_mb << 20, mem_mb << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if cpu_s is not None:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))

    try:
        proc = subprocess.run([sys.executable, "-m", "pyggml.reference.grammar"],
                              input=pickle.dumps((func, args)), capture_output=True, timeout=timeout,
                              env=env, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return {"abnormal": "timeout"}
    if proc.returncode != 0:
        rc = proc.returncode
        return {"abnormal": f"signal {-rc}" if rc < 0 else f"exit {rc}"}
    kind, value = pickle.loads(proc.stdout)
    if kind == "exc":
        raise RuntimeError(f"reference child: {value}")
    return value


def _serve_once() -> None:
    chan = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    func, args = pickle.loads(sys.stdin.buffer.read())
    try:
        result = ("ok", globals()[func](*args))
    except Exception as exc:
        result = ("exc", f"{type(exc).__name__}: {exc}")
    chan.write(pickle.dumps(result))
    chan.flush()


if __name__ == "__main__":
    _serve_once()
