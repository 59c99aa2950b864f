"""A BertModel checkpoint (safetensors + vocab.txt + sentence-transformers config) to GGUF, the
way the reference's converter writes it.

llama.cpp: convert_hf_to_gguf.py with conversion/bert.py ``BertModel`` and conversion/base.py
(``TextModel.set_gguf_parameters``, ``prepare_tensors``' type rules, ``prepare_metadata``,
``_try_set_pooling_type``).  Written with the ``gguf`` package (GGUFWriter, TensorNameMap,
Metadata, SpecialVocab) and ``safetensors``' numpy loader, so neither torch nor transformers is
needed.  The output type is the converter's default ("auto": F16 for an F32/F16 checkpoint):
2-D weights F16; 1-D tensors, norms, position and token-type embeddings F32.

Differences from the reference converter (none reaches the tensors or the keys the loader
reads): the vocab comes from ``vocab.txt`` and tokenizer.json's added tokens rather than from
transformers' AutoTokenizer; the pre-tokenizer name is not hashed from a tokenization but
chosen for the one tokenizer accepted here, an uncased BertTokenizer, whose hash the reference
maps to "bert-bge".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf
import numpy as np

# sentence-transformers pooling modes -> the pooling type the converter writes
_POOLING = (("pooling_mode_mean_tokens", gguf.PoolingType.MEAN),
            ("pooling_mode_cls_token", gguf.PoolingType.CLS),
            ("pooling_mode_lasttoken", gguf.PoolingType.LAST))
# HF tensors BertModel drops (the pretraining heads and the pooler)
_SKIP = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")
_SKIP_PREFIX = ("cls.predictions", "cls.seq_relationship")
# tensors kept in F32 whatever the output type (prepare_tensors' list, the BERT subset)
_F32_TYPES = (gguf.MODEL_TENSOR.POS_EMBD, gguf.MODEL_TENSOR.TOKEN_TYPES)


class ConvertError(ValueError):
    """A checkpoint this converter does not handle (the reference converter raises too)."""


def convert_bert(src: str | Path, out: str | Path) -> Path:
    """Convert the BertModel checkpoint in ``src`` to the GGUF file ``out``; returns ``out``."""
    from safetensors.numpy import load_file

    src, out = Path(src), Path(out)
    hp = json.loads((src / "config.json").read_text(encoding="utf-8"))
    archs = hp.get("architectures") or []
    if not set(archs) & {"BertModel", "BertForMaskedLM"}:
        raise ConvertError(f"{src}: architectures {archs}: only BertModel/BertForMaskedLM are converted")
    n_layer = hp["num_hidden_layers"]
    w = gguf.GGUFWriter(path=None, arch=gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    ftype = gguf.LlamaFileType.MOSTLY_F16  # outtype "auto": no bf16/f16 checkpoint says otherwise
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layer)
    for path in sorted(src.glob("*.safetensors")):
        for name, data in load_file(path).items():
            _add_tensor(w, tmap, name, data)

    # prepare_metadata: general.*, then the model's parameters, then the vocab
    total = w.get_total_parameter_count()
    meta = gguf.Metadata.load(None, src, None, total[0])
    if meta.name is None:
        meta.name = src.name
    if meta.size_label is None and total[0] > 0:
        meta.size_label = gguf.size_label(*total)
    w.add_type(gguf.GGUFType.MODEL)
    meta.set_gguf_meta_model(w)
    _set_parameters(w, src, hp, ftype)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _set_vocab(w, src, hp)

    w.write_header_to_file(path=out)
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def _add_tensor(w: gguf.GGUFWriter, tmap: gguf.TensorNameMap, name: str, data: np.ndarray) -> None:
    """BertModel.filter_tensors + TextModel.modify_tensors + prepare_tensors' type choice."""
    name = name.removeprefix("bert.")
    if name.endswith(".gamma"):
        name = name[: -len(".gamma")] + ".weight"
    if name.endswith(".beta"):
        name = name[: -len(".beta")] + ".bias"
    if name in _SKIP or name.startswith(_SKIP_PREFIX):
        return
    mapped = tmap.get_type_and_name(name, try_suffixes=(".weight", ".bias"))
    if mapped is None:
        raise ConvertError(f"can not map tensor {name!r}")
    ttype, new_name = mapped
    data = data.astype(np.float32) if data.dtype not in (np.float16, np.float32) else data
    # 1-D tensors, norms, the F32 list and anything not a ".weight" stay F32; the rest F16
    keep_f32 = (data.ndim <= 1 or new_name.endswith("_norm.weight") or ttype in _F32_TYPES
                or not new_name.endswith(".weight"))
    qtype = gguf.GGMLQuantizationType.F32 if keep_f32 else gguf.GGMLQuantizationType.F16
    w.add_tensor(new_name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)


def _set_parameters(w: gguf.GGUFWriter, src: Path, hp: dict[str, Any], ftype: gguf.LlamaFileType) -> None:
    """TextModel.set_gguf_parameters (the keys a BERT config has), then BertModel's."""
    w.add_block_count(hp["num_hidden_layers"])
    w.add_context_length(hp["max_position_embeddings"])
    w.add_embedding_length(hp["hidden_size"])
    w.add_feed_forward_length(hp["intermediate_size"])
    w.add_head_count(hp["num_attention_heads"])
    if "num_key_value_heads" in hp:
        w.add_head_count_kv(hp["num_key_value_heads"])
    w.add_layer_norm_eps(hp["layer_norm_eps"])
    w.add_file_type(ftype)
    w.add_causal_attention(False)
    pooling = _pooling_type(src)
    if pooling is not None:
        w.add_pooling_type(pooling)


def _pooling_type(src: Path) -> gguf.PoolingType | None:
    """_try_set_pooling_type: from the sentence-transformers Pooling module, if shipped."""
    modules = src / "modules.json"
    if not modules.is_file():
        return None
    for mod in json.loads(modules.read_text(encoding="utf-8")):
        if mod["type"].endswith("Pooling"):
            cfg = json.loads((src / mod["path"] / "config.json").read_text(encoding="utf-8"))
            for key, pt in _POOLING:
                if cfg.get(key):
                    return pt
            raise ConvertError("Only MEAN, CLS, and LAST pooling types supported")
    return None


def _set_vocab(w: gguf.GGUFWriter, src: Path, hp: dict[str, Any]) -> None:
    """BertModel.set_vocab: the WordPiece vocab in phantom-space form ("##x" -> "x", a word
    start gets U+2581, control tokens stay as they are), token types, special tokens."""
    tokenizer = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    norm, pre = tokenizer.get("normalizer") or {}, tokenizer.get("pre_tokenizer") or {}
    uncased_bert = norm.get("type") == "BertNormalizer" and norm.get("lowercase")
    if not (uncased_bert and pre.get("type") == "BertPreTokenizer"):
        raise ConvertError("only an uncased BertTokenizer (pre-tokenizer 'bert-bge') is converted")
    words = (src / "vocab.txt").read_text(encoding="utf-8").split("\n")
    if words and words[-1] == "":
        words.pop()
    n_vocab = hp.get("vocab_size", len(words))
    added = {t["id"]: t for t in tokenizer.get("added_tokens", [])}
    tokens, types = [], []
    for i in range(n_vocab):
        if i >= len(words):
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        tok = words[i]
        if i in added and added[i].get("special", False):
            types.append(gguf.TokenType.CONTROL)
            tokens.append(tok)
        else:
            types.append(gguf.TokenType.NORMAL)
            tokens.append(tok[2:] if tok.startswith("##") else "\u2581" + tok)
    w.add_token_type_count(hp.get("type_vocab_size", 1))
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("bert-bge")
    w.add_token_list(tokens)
    w.add_token_types(types)
    gguf.SpecialVocab(src, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)
