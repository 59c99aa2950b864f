"""cffi: every C declaration pyggml uses, and the loading of the shared libraries.

ABI mode (``ffi.dlopen``): nothing is compiled at install time beyond the CMake build.
The libraries live in ``pyggml/lib`` (installed by CMakeLists.txt); ``PYGGML_LIB_DIR``
overrides that folder.  Sections: ggml (compute), gguf, probe (the reference; only
``pyggml.reference`` may call it).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import cffi

ffi = cffi.FFI()

# --- ggml ------------------------------------------------------------------------------
# (declarations of ggml.h / ggml-backend.h / ggml-alloc.h / ggml-cpu.h that pyggml.ggml uses)
GGML_CDEF = """
"""

# --- probe (tools/paritychecker/probe/probe.h) -----------------------------------------
PROBE_CDEF = """
void   ps_log_capture(int echo);
size_t ps_log_take(char * out, size_t cap);
void   ps_free(void * p);
int    ps_gguf_parse_buffer(const void * data, size_t size, int with_data, char ** json);
int    ps_gguf_parse_file(const char * path, int no_alloc, char ** json);
void * ps_model_load(const char * path, int vocab_only, int use_mmap, int check_tensors,
                     int cancel_after, char ** json);
int    ps_model_tensor_read(void * model, const char * name, void * dst, size_t size);
void   ps_model_free(void * model);
"""

# --- llama.h (the reference's public C API; only pyggml.reference calls it) -------------
# Only functions with plain signatures are declared; structs passed by value stay in the probe.
# Each area owns one block; a function is declared in exactly one block.
LLAMA_BASE_CDEF = """
typedef int32_t llama_token;
typedef int32_t llama_pos;
typedef int32_t llama_seq_id;
struct llama_model;
struct llama_vocab;
struct llama_context;
const struct llama_vocab * llama_model_get_vocab(const struct llama_model * model);
"""
LLAMA_VOCAB_CDEF = """
"""
LLAMA_SAMPLER_CDEF = """
"""

ffi.cdef(GGML_CDEF)
ffi.cdef(PROBE_CDEF)
ffi.cdef(LLAMA_BASE_CDEF)
ffi.cdef(LLAMA_VOCAB_CDEF)
ffi.cdef(LLAMA_SAMPLER_CDEF)


def lib_dir() -> Path:
    """The folder holding the shared libraries of this install."""
    override = os.environ.get("PYGGML_LIB_DIR")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent / "lib"
    if here.is_dir():
        return here
    # editable installs keep compiled files in site-packages, Python files in the checkout
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        located = Path(str(distribution("pyggml").locate_file("pyggml/lib")))
    except PackageNotFoundError:
        located = here
    if located.is_dir():
        return located
    raise ImportError(f"pyggml's shared libraries are missing (looked in {here}); "
                      "build with `pip install -e .` or set PYGGML_LIB_DIR")


def _soname(stem: str) -> str:
    if sys.platform == "darwin":
        return f"lib{stem}.dylib"
    if sys.platform == "win32":
        return f"{stem}.dll"
    return f"lib{stem}.so"


@functools.cache
def _open(stem: str):
    path = lib_dir() / _soname(stem)
    if not path.exists():
        raise ImportError(f"missing shared library {path}")
    return ffi.dlopen(str(path))


def ggml():
    """ggml + ggml-base + the CPU backend (one namespace: libggml re-exports nothing, so the
    symbols resolve through the global lookup of the already-loaded dependencies)."""
    _open("ggml-base")
    return _open("ggml")


def ggml_base():
    return _open("ggml-base")


def llama():
    """The reference's libllama (public llama.h API). Only pyggml.reference calls this."""
    probe()  # loads libllama with the probe and routes its logs into the capture buffer
    return _open("llama")


def probe():
    """The reference probe (links llama, llama-common and ggml). Only pyggml.reference calls this."""
    lib = _open("pyggml_probe")
    lib.ps_log_capture(0)
    return lib
