"""The unicode tables come from the build (pyggml/data), not from the reference tree at run time:
a wheel ships no vendor/ folder."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyggml.vocab import _unicode_gen
from pyggml.vocab import unicode as U


def _reference_source() -> Path:
    path = U._reference_data_file()  # the checkout's tree (tests run from a source checkout)
    assert path.is_file()
    return path


def _generate(tmp_path: Path) -> Path:
    """Run the build-time converter as CMake does, in an isolated interpreter where numpy
    cannot be imported (the isolated build environment has none)."""
    out = tmp_path / U.TABLES_FILE
    code = ("import runpy, sys; sys.modules['numpy'] = None; "
            f"sys.argv = ['gen', {str(_reference_source())!r}, {str(out)!r}]; "
            f"runpy.run_path({_unicode_gen.__file__!r}, run_name='__main__')")
    subprocess.run([sys.executable, "-I", "-c", code], check=True)
    return out


def test_build_installs_the_tables_converted_from_the_pinned_file(tmp_path):
    built = U.built_tables_file()
    assert built is not None, "pyggml/data/unicode-tables.npz was not installed by the build"
    assert built.read_bytes() == _generate(tmp_path).read_bytes()  # deterministic converter
    with np.load(built) as z:
        assert bytes(z["sha256"]) == hashlib.sha256(_reference_source().read_bytes()).digest()


def test_tables_load_without_any_reference_tree(monkeypatch, tmp_path):
    with np.load(_generate(tmp_path)) as z:
        expected = U._expand(dict(z))

    def unreachable():
        raise U.UnicodeDataError("no reference tree (as in an installed wheel)")

    monkeypatch.setattr(U, "_reference_data_file", unreachable)
    monkeypatch.setenv("PYGGML_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("PYGGML_LLAMA_CPP_DIR", raising=False)
    U.tables.cache_clear()
    try:
        got = U.tables()
        for key in ("flags", "lower", "nfd"):
            assert np.array_equal(got[key], expected[key]), key
        assert not (tmp_path / "empty-cache").exists()  # nothing converted at run time
    finally:
        U.tables.cache_clear()


def test_source_checkout_without_a_build_converts_into_the_cache(monkeypatch, tmp_path):
    with np.load(U.built_tables_file()) as z:
        expected = U._expand(dict(z))
    monkeypatch.setattr(U, "built_tables_file", lambda: None)
    monkeypatch.setenv("PYGGML_CACHE", str(tmp_path))
    U.tables.cache_clear()
    try:
        path = U._tables_file()
        assert path.parent == tmp_path and path.name.startswith("unicode-tables-")
        got = U.tables()
        for key in ("flags", "lower", "nfd"):
            assert np.array_equal(got[key], expected[key]), key
    finally:
        U.tables.cache_clear()


def test_flags_follow_the_reference_rules():
    fl = U.flags_table()
    # each range start runs to the next start; the last start is 0x110000
    assert fl.dtype == np.uint16 and fl.shape == (U.MAX_CODEPOINTS,)
    assert fl[0x20] & U.SEPARATOR and fl[0x20] & U.WHITESPACE
    assert fl[ord("a")] & U.LOWERCASE and not fl[ord("a")] & U.UPPERCASE
    assert fl[ord("e")] & U.NFD and not fl[0xE9] & U.NFD  # the reference flags the NFD target (é -> e)


def test_malformed_source_is_refused():
    with pytest.raises(_unicode_gen.FormatError):
        _unicode_gen.parse(b"const int x = {0x1};")
