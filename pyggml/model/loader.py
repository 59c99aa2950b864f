"""``pyggml.Model.load``: llama_model_load_from_file's path, step by step.

llama.cpp: src/llama.cpp ``llama_model_load`` (the order and the error prefixes),
src/llama-model-loader.cpp (constructor: splits, weights map, ftype; ``check_tensor_dims``,
``create_tensor``, ``done_getting_tensors``, ``load_all_data``: progress and validation).
Every failure raises ``LoadError`` whose message is the text the reference logs after
"error loading model: " (status -1), or "cancelled model load" (status -2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gguf import MODEL_ARCH_NAMES
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

from .._native import ffi, ggml
from ..errors import GGUFError, LoadAbortError, LoadError, TokenizerError
from . import arch_bert, arch_gemma3, arch_llama, buft
from .gguf_types import GGUFFile
from .hparams import (
    KEY,
    LlamaHParams,
    Metadata,
    TokenizerMeta,
    load_gemma3_hparams,
    load_llama_hparams,
    load_tokenizer_meta,
    templates_from_kv,
)
from .weights import Weight, WeightBuffers, read_into, validate_row_data

ProgressCallback = Callable[[float], bool | None]

KNOWN_ARCHS = frozenset(MODEL_ARCH_NAMES.values())
_BLK = re.compile(r"blk\.\s*([+-]?\d+)")


@dataclass(frozen=True)
class TensorMeta:
    name: str
    type: QT
    ne: tuple[int, int, int, int]   # ggml order
    nbytes: int


@dataclass
class Model:
    """A loaded model (llama_model): metadata, hyper-parameters, weights.

    ``hparams`` is None for ``vocab_only`` loads; ``tensors`` lists the model's tensors in the
    reference's creation order (llama_model::tensors_by_name), each once."""

    path: str
    arch: str
    name: str
    gguf: GGUFFile
    metadata: Metadata
    tokenizer: TokenizerMeta
    hparams: LlamaHParams | None = None
    ftype: int = 0
    tensors: list[TensorMeta] = field(default_factory=list)
    split_paths: list[str] = field(default_factory=list)
    _weights: dict[str, Weight] = field(default_factory=dict, repr=False)
    _buffers: WeightBuffers | None = field(default=None, repr=False)
    _vocab: Any = field(default=None, repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, vocab_only: bool = False, use_mmap: bool = True,
             use_extra_bufts: bool = True, check_tensors: bool = False,
             progress: ProgressCallback | None = None) -> Model:
        """Load a GGUF model (a single file, or the first of ``-00001-of-0000N.gguf`` splits).

        ``use_extra_bufts`` (llama_model_params.use_extra_bufts, default on as in the reference):
        weights go to the CPU's extra buffer types (CPU_REPACK, AMX, ...) where ggml says they can,
        exactly as the reference places them (see pyggml.model.buft); off, every weight is a plain
        CPU tensor.  On a host with AMX pyggml skips the AMX type (a documented divergence: see
        the README).

        ``progress(fraction)`` is called before each tensor's data is loaded with the fraction
        of bytes done, then with 1.0; returning False cancels (LoadError, status -2).
        Raises LoadError (status -1) on any error the reference reports, LoadAbortError where
        the reference aborts."""
        return load_model(os.fspath(path), vocab_only=vocab_only, use_mmap=use_mmap,
                          use_extra_bufts=use_extra_bufts, check_tensors=check_tensors, progress=progress)

    @property
    def vocab(self) -> Any:
        """The tokenizer (``pyggml.vocab.Vocab``), built by ``Model.load`` (as the reference's
        load builds it: a vocabulary it refuses fails the load) or, for a Model made some other
        way, on first use."""
        if self._vocab is None:
            from . import vocab_builder

            self._vocab = vocab_builder()(self.gguf)
        return self._vocab

    @property
    def chat_templates(self) -> dict[str, str]:
        """The chat templates in the metadata: ``{"": default, "<name>": variant, ...}``."""
        return templates_from_kv(self.gguf.kv)

    @property
    def chat_template(self) -> str | None:
        """The default chat template (``tokenizer.chat_template``), or None."""
        return self.chat_templates.get("")

    def tensor(self, name: str) -> Any:
        """The weight as a ``pyggml.ggml.Tensor`` (data in a CPU backend buffer)."""
        if self._buffers is None:
            raise KeyError(f"{name}: the model holds no weights (vocab_only, or closed)")
        return self._buffers.tensors[name]

    def output_tensor(self) -> Any:
        """The output projection: ``output.weight``, or for tied embeddings the copy of
        ``token_embd.weight`` the reference made for it in another buffer type (else the
        embedding itself)."""
        if self._buffers is None:
            raise KeyError("output: the model holds no weights (vocab_only, or closed)")
        t = self._buffers.tensors
        if "output.weight" in t:
            return t["output.weight"]
        return self._buffers.dups.get("token_embd.weight", t["token_embd.weight"])

    @property
    def n_tensors(self) -> int:
        """Weight tensors in memory, the tied-output copy included (llama_model::n_tensors)."""
        if self._buffers is None:
            return 0
        return len(self._buffers.tensors) + len(self._buffers.dups)

    @property
    def placement(self) -> list[tuple[str, str, int]]:
        """Every weight tensor with its buffer type name and size: (name, buft, nbytes), the
        tied-output copy included (listed after the originals)."""
        if self._buffers is None:
            return []
        out = []
        for name, t in list(self._buffers.tensors.items()) + list(self._buffers.dups.items()):
            out.append((name, _buft_name(t), _nbytes(t)))
        return out

    def tensor_data(self, name: str) -> np.ndarray:
        """The bytes of a weight in its backend buffer (uint8 view, no copy)."""
        if self._buffers is None:
            raise KeyError(f"{name}: the model holds no weights (vocab_only, or closed)")
        return self._buffers.view(name, self._weights[name].nbytes)

    def close(self) -> None:
        """Release the weight buffers (llama_model_free); mappings go with their last view."""
        if self._buffers is not None:
            self._buffers.close()
            self._buffers = None

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        what = "vocab only" if self.hparams is None else f"{len(self.tensors)} tensors"
        return f"<pyggml.Model {os.path.basename(self.path)!r} arch={self.arch} {what}>"


def load_with_bar(path: str | os.PathLike[str], *, show: bool = True, desc: str = "loading model",
                  **kwargs: Any) -> Model:
    """``Model.load`` drawing a tqdm bar from its progress callback (``show=False``: none)."""
    from tqdm import tqdm

    with tqdm(total=100, unit="%", desc=desc, disable=not show) as bar:
        def progress(p: float) -> bool:
            bar.update(round(100 * p) - bar.n)
            return True

        return Model.load(path, progress=progress, **kwargs)


# ---- the loader's constructor (llama_model_loader::llama_model_loader) ------------------

def _parse(path: str, what: str) -> tuple[GGUFFile, int]:
    """gguf_init_from_file(no_alloc=true) of one file: its metadata and tensor infos."""
    from .gguf import parse_file

    try:
        size = os.path.getsize(path)
        return parse_file(path, with_data=False), size
    except GGUFError as exc:
        if exc.reason == "abort":  # the reference aborts inside gguf (ggml_new_tensor)
            raise LoadAbortError(f"{path}: {exc}") from exc
        raise LoadError(f"llama_model_loader: failed to load {what} from {path}") from exc
    except OSError as exc:
        raise LoadError(f"llama_model_loader: failed to load {what} from {path}") from exc


def _add_weights(weights: dict[str, Weight], gf: GGUFFile, idx: int, file_size: int) -> None:
    for t in gf.tensors:
        name = _cstr(t.name)
        if name in weights:
            raise LoadError(f"invalid model: tensor '{name}' is duplicated", key=name)
        offs = gf.data_offset + t.offset
        if offs + t.size > file_size:
            raise LoadError(f"tensor '{name}' data is not within the file bounds, model is corrupted "
                            "or incomplete", key=name)
        weights[name] = Weight(name, QT(t.type), tuple(t.ne), idx, offs, t.size)  # type: ignore[arg-type]


def _split_paths(path: str, n_split: int) -> list[str]:
    # llama_split_prefix/llama_split_path: "<prefix>-%05d-of-%05d.gguf"
    suffix = f"-{1:05d}-of-{n_split:05d}.gguf"
    if len(path) <= len(suffix) or not path.endswith(suffix):
        raise LoadError(f"invalid split file name: {path}")
    prefix = path[: -len(suffix)]
    return [f"{prefix}-{i + 1:05d}-of-{n_split:05d}.gguf" for i in range(n_split)]


def _open_files(path: str) -> tuple[GGUFFile, Metadata, dict[str, Weight], list[str]]:
    gf, size = _parse(path, "model")
    meta = Metadata(gf.kv)
    arch = meta.get(KEY.GENERAL_ARCHITECTURE, VT.STRING) or ""
    meta.arch = arch
    weights: dict[str, Weight] = {}
    _add_weights(weights, gf, 0, size)
    paths = [path]
    n_split = meta.get(KEY.SPLIT_COUNT, VT.UINT16) or 0
    if n_split > 1:
        idx = meta.get(KEY.SPLIT_NO, VT.UINT16, required=True)
        if idx != 0:
            raise LoadError(f"illegal split file idx: {idx} (file: {path}), model must be loaded with "
                            "the first split")
        paths = _split_paths(path, n_split)
        for i in range(1, n_split):
            sgf, ssize = _parse(paths[i], "GGUF split")
            kv = Metadata(sgf.kv).find(KEY.SPLIT_NO)
            if kv is None:
                raise LoadError(f"missing key {KEY.SPLIT_NO} in GGUF split {paths[i]}")
            if kv.type != VT.UINT16:  # gguf_get_val_u16 asserts on the type
                raise LoadAbortError(f"GGML_ASSERT(type == u16) failed for {KEY.SPLIT_NO} in {paths[i]}")
            if kv.value != i:
                raise LoadError(f"invalid split file idx: {kv.value} (file: {paths[i]}), expected {i}")
            _add_weights(weights, sgf, i, ssize)
        n_tensors = meta.get(KEY.SPLIT_TENSORS_COUNT, VT.INT32, required=True)
        if n_tensors != len(weights):
            raise LoadError(f"corrupted model: {n_tensors} tensors expected but {len(weights)} found")
    return gf, meta, _sorted_weights(weights), paths


def _sorted_weights(weights: dict[str, Weight]) -> dict[str, Weight]:
    # llama_model_loader::weight_name_comparer: by "blk.%d." layer (-1 when none), then name
    # sscanf(name, "blk.%d.", &layer) sets the layer once the number parses, whatever follows
    def layer_key(name: str) -> tuple[int, bytes]:
        m = _BLK.match(name)
        layer = int(m.group(1)) if m else -1
        return (layer, name.encode("utf-8", "surrogateescape"))

    return {k: weights[k] for k in sorted(weights, key=layer_key)}


def _cstr(b: bytes | str) -> str:
    if isinstance(b, str):
        return b
    return b.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _ftype(meta: Metadata, weights: dict[str, Weight]) -> int:
    # the most common tensor type (first to reach the max, in weights-map order) | GUESSED,
    # unless general.file_type says otherwise
    counts: dict[QT, int] = {}
    best, best_n = QT.F32, 0
    for w in weights.values():
        counts[w.type] = counts.get(w.type, 0) + 1
        if counts[w.type] > best_n:
            best, best_n = w.type, counts[w.type]
    explicit = meta.get(KEY.GENERAL_FILE_TYPE, VT.UINT32)
    if explicit is not None:
        return explicit
    return _FTYPE_OF_TYPE.get(best, 0) | LLAMA_FTYPE_GUESSED


LLAMA_FTYPE_GUESSED = 1024
# llama.cpp: the type_max -> llama_ftype switch of the loader's constructor (include/llama.h ids)
_FTYPE_OF_TYPE = {QT.F32: 0, QT.F16: 1, QT.Q4_0: 2, QT.Q4_1: 3, QT.Q8_0: 7, QT.Q5_0: 8, QT.Q5_1: 9,
                  QT.Q2_K: 10, QT.Q3_K: 12, QT.Q4_K: 15, QT.Q5_K: 17, QT.Q6_K: 18, QT.BF16: 32}


# ---- llama_model_load -------------------------------------------------------------------

def load_model(path: str, *, vocab_only: bool = False, use_mmap: bool = True, use_extra_bufts: bool = True,
               check_tensors: bool = False, progress: ProgressCallback | None = None) -> Model:
    gf, meta, weights, paths = _open_files(path)
    ftype = _ftype(meta, weights)
    arch = meta.arch
    if arch not in KNOWN_ARCHS:
        raise LoadError(f"unknown model architecture: '{arch}'")

    try:
        name = meta.get(KEY.GENERAL_NAME, VT.STRING) or ""
        hp = None if vocab_only else _arch_hparams(meta, name)
    except LoadAbortError:
        raise
    except LoadError as exc:
        raise LoadError("error loading model hyperparameters: " + str(exc), key=exc.key) from exc
    try:
        vocab = _load_vocab(gf)  # llama_model::load_vocab: the vocabulary is part of every load
        tok = load_tokenizer_meta(meta)
    except LoadAbortError:
        raise
    except LoadError as exc:
        raise LoadError("error loading model vocabulary: " + str(exc), key=exc.key) from exc

    model = Model(path=path, arch=arch, name=name, gguf=gf, metadata=meta, tokenizer=tok, hparams=hp,
                  ftype=ftype, split_paths=paths, _vocab=vocab)
    if vocab_only:
        return model
    assert hp is not None
    created, extra, dups = _create_tensors(arch, hp, weights, buft.cpu_buft_list(use_extra_bufts))
    model.tensors = [TensorMeta(w.name, w.type, w.ne, w.nbytes) for w in created]
    model._weights = {w.name: w for w in created}
    _load_all_data(model, created, paths, use_mmap=use_mmap, check_tensors=check_tensors,
                   progress=progress, size_data=sum(w.nbytes for w in weights.values()),
                   extra=extra, dups=dups)
    return model


# what the vocabulary stage says where the reference does not throw but aborts (GGML_ASSERT,
# an uncaught division by zero): the load dies there instead of returning an error
_VOCAB_ABORTS = ("the reference aborts", "the reference divides by zero")


def _load_vocab(gf: GGUFFile) -> Any:
    """Build the vocabulary with the registered builder (``pyggml.vocab.Vocab.from_gguf``) as
    llama_model_load does (``load_vocab``): its errors are the load's.  A TokenizerError is the
    exception the reference throws (LoadError, its text), or an abort (LoadAbortError)."""
    from . import vocab_builder

    try:
        return vocab_builder()(gf)
    except TokenizerError as exc:
        msg = str(exc)
        if any(s in msg for s in _VOCAB_ABORTS):
            raise LoadAbortError(msg) from exc
        raise LoadError(msg.removesuffix(" (the reference throws)")) from exc


# the tensor declarations of each architecture pyggml loads
_DECLARE = {"llama": arch_llama.declare, "bert": arch_bert.declare, "gemma3": arch_gemma3.declare}


def _arch_hparams(meta: Metadata, name: str) -> LlamaHParams:
    if meta.arch not in _DECLARE:
        raise LoadError(f"pyggml: architecture '{meta.arch}' is not implemented (only "
                        f"{', '.join(map(repr, _DECLARE))}); use vocab_only=True")
    return (load_gemma3_hparams if meta.arch == "gemma3" else load_llama_hparams)(meta, name)


def _fmt_shape(ne: tuple[int, ...]) -> str:
    # llama_format_tensor_shape: "%6" PRId64 joined by ", "
    return ", ".join(f"{n:6d}" for n in ne)


def _create_tensors(arch: str, hp: LlamaHParams, weights: dict[str, Weight], buft_list: list[buft.BufType]
                    ) -> tuple[list[Weight], dict[str, Any], list[tuple[Weight, Any]]]:
    """create_tensor for each declaration (check_tensor_dims, the buffer type), then
    done_getting_tensors.  Returns the created weights, the extra buffer type of each weight
    not in the plain CPU type, and the duplicates made in another buffer type."""
    created: dict[str, Weight] = {}
    where: dict[str, buft.BufType] = {}
    dups: list[tuple[Weight, Any]] = []
    n_created = 0
    for decl in _DECLARE[arch](hp, lambda n: n in weights):
        w = weights.get(decl.name)
        if w is None:
            if decl.flags & arch_llama.NOT_REQUIRED:
                continue
            raise LoadError(f"check_tensor_dims: tensor '{decl.name}' not found", key=decl.name)
        want = decl.ne
        if any((i < len(want) and want[i] != w.ne[i]) or (i >= len(want) and w.ne[i] != 1)
               for i in range(4)):
            raise LoadError(f"check_tensor_dims: tensor '{decl.name}' has wrong shape; expected "
                            f"{_fmt_shape(want)}, got {_fmt_shape(w.ne)}", key=decl.name)
        duplicated = bool(decl.flags & arch_llama.DUPLICATED)
        op = buft.weight_op(decl.name, duplicated=duplicated)
        bt = buft.select(hp, int(w.type), w.ne, op, buft_list)
        if duplicated and decl.name in created:
            # the reference looks the name up in the context of the chosen buffer type: the
            # same type means the same tensor, another type a second copy (the tied output)
            if bt != where[decl.name] and all(d.name != decl.name for d, _ in dups):
                dups.append((w, bt.buft))
            continue
        created[decl.name] = w
        where[decl.name] = bt
        if not duplicated:
            n_created += 1
    n_tensors = len(weights)
    if n_created > n_tensors:
        raise LoadError(f"done_getting_tensors: too many tensors created; expected {n_tensors}, "
                        f"got {n_created}")
    if n_created < n_tensors:
        raise LoadError(f"done_getting_tensors: wrong number of tensors; expected {n_tensors}, "
                        f"got {n_created}")
    extra = {name: bt.buft for name, bt in where.items() if not bt.is_cpu_default}
    return list(created.values()), extra, dups


def _load_all_data(model: Model, created: list[Weight], paths: list[str], *, use_mmap: bool,
                   check_tensors: bool, progress: ProgressCallback | None, size_data: int,
                   extra: dict[str, Any], dups: list[tuple[Weight, Any]]) -> None:
    """llama_model_loader::load_all_data, tensors in creation order; weights in an extra buffer
    type (and duplicates) are written with ggml_backend_tensor_set after their bytes are read."""
    model._buffers = WeightBuffers(created, paths, use_mmap=use_mmap, extra=extra, dups=dups)
    files = None if use_mmap else [open(p, "rb") for p in paths]
    try:
        size_done = 0
        invalid: list[str] = []
        for w in created:
            if progress is not None and progress(_fraction(size_done, size_data)) is False:
                model.close()
                raise LoadError("cancelled model load", status=LoadError.CANCELLED)
            if w.name not in extra:  # extra buffer types are written (and checked) below
                if files is not None:
                    read_into(model.tensor_data(w.name), files[w.file], w.offset)
                if check_tensors and not validate_row_data(w.type, model.tensor_data(w.name)):
                    invalid.append(w.name)
            size_done += w.nbytes
        for w, t in model._buffers.pending:
            src = _file_bytes(model._buffers, files, w)
            if check_tensors and w.name not in model._buffers.dups and not validate_row_data(w.type, src):
                invalid.append(w.name)
            model._buffers.set_from(t, src)
        model._buffers.pending.clear()
        if invalid:
            model.close()
            raise LoadError("found tensors with invalid data", key=invalid[0])
        if size_done >= size_data and progress is not None and progress(1.0) is False:
            # the reference honours a cancel even at the final call
            model.close()
            raise LoadError("cancelled model load", status=LoadError.CANCELLED)
    finally:
        for f in files or ():
            f.close()


def _file_bytes(bufs: WeightBuffers, files: list[Any] | None, w: Weight) -> np.ndarray:
    if files is None:
        return bufs.maps[w.file][w.offset:w.offset + w.nbytes]
    dst = np.empty(w.nbytes, np.uint8)
    read_into(dst, files[w.file], w.offset)
    return dst


def _buft_name(t: Any) -> str:
    lib = ggml()
    return ffi.string(lib.ggml_backend_buft_name(lib.ggml_backend_buffer_get_type(t.ptr.buffer))).decode()


def _nbytes(t: Any) -> int:
    return int(ggml().ggml_nbytes(t.ptr))


def _fraction(done: int, total: int) -> float:
    # (float) size_done / size_data: both operands as float32, the quotient rounded to float32
    return float(np.float32(np.float32(done) / np.float32(total)))
