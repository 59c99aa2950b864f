"""The reference pin: the tree is materialized from the pinned sdist, hash-checked, idempotently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pin_names_the_reference():
    pin = json.loads((ROOT / "vendor" / "pin.json").read_text())
    assert pin["sdist"] == "llama-cpp-python" and pin["version"] == "0.3.36"
    assert pin["llama_cpp_commit"].startswith("0c1e57098")
    assert len(pin["sha256"]) == 64


def test_fetch_is_idempotent_and_prints_the_tree():
    cmd = [sys.executable, str(ROOT / "vendor" / "fetch_reference.py"), "--print-dir"]
    first = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
    second = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
    assert first == second
    tree = Path(first)
    assert (tree / "include" / "llama.h").exists()
    stamp = json.loads((tree / ".pyggml-stamp").read_text())
    assert stamp == json.loads((ROOT / "vendor" / "pin.json").read_text())


def test_override_must_be_a_llama_cpp_tree(tmp_path):
    cmd = [sys.executable, str(ROOT / "vendor" / "fetch_reference.py"), "--print-dir"]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={"PYGGML_LLAMA_CPP_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0 and "not a llama.cpp tree" in proc.stderr


def test_no_llama_cpp_source_is_tracked():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "vendor/llama.cpp/" not in files
