"""Exceptions of the public API; each carries the reference's status where one exists."""

from __future__ import annotations


class PyggmlError(Exception):
    """Base class of every error pyggml raises on purpose."""


class GGMLError(PyggmlError, ValueError):
    """Invalid input to a ggml operation, caught before it reaches C (where ggml would abort)."""


class GGUFError(PyggmlError, ValueError):
    """A GGUF file or buffer that ggml/src/gguf.cpp would reject (gguf_init_* returns NULL).

    ``reason`` names the rule that failed (a short stable identifier), ``offset`` the byte
    position where reading stopped, when known.
    """

    def __init__(self, message: str, *, reason: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.offset = offset


class LoadError(PyggmlError):
    """A model load that llama_model_load_from_file answers with NULL.

    ``status`` is the reference's internal load status: -1 (error) or -2 (cancelled by the
    progress callback).  ``key`` names the metadata key or tensor involved, when there is one.
    """

    ERROR = -1
    CANCELLED = -2

    def __init__(self, message: str, *, status: int = ERROR, key: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.key = key


class GrammarError(PyggmlError, ValueError):
    """A GBNF grammar the reference rejects, or a grammar state it cannot continue from.

    ``message`` is the reference's own text (llama_grammar_parser::parse's ``err.what()``,
    llama_grammar_init_impl's log line, or llama_grammar_accept_*'s runtime_error).
    ``reason`` is a short stable identifier ("parse", "undefined-rule", "no-rules",
    "missing-root", "left-recursion", "empty-stacks", "eog-not-allowed", "no-vocab", "trigger-pattern",
    "internal" where the reference would abort, and "repetition-bounds" for ``{m,n}`` with
    n < m, which the reference never returns from); ``position`` the byte offset in the
    grammar text where parsing stopped, when there is one.
    """

    def __init__(self, message: str, *, reason: str = "parse", position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.position = position


class LoadAbortError(LoadError):
    """A model load where the reference stops the process (``GGML_ASSERT`` in
    llama_model_base::load_hparams, e.g. a block_count out of range).  pyggml raises instead;
    the paritychecker compares it with the reference outcome "aborted"."""


class BatchError(PyggmlError, ValueError):
    """A batch that llama_batch_allocr::init rejects (the reference logs an error and returns
    false; llama_decode answers -1), or a batch/split request where the reference aborts.

    ``message`` is the reference's own log text (e.g. ``"init: invalid token[3] = 99\\n"``);
    ``reason`` a short stable identifier of the rule ("n_seq_max", "content-types", "no-content",
    "token", "seq_id", "mrope-pos", "memory-pos", "non-continuous", "diverged", "seq-sets",
    "decreasing", for the aborts "empty", "keep-tail", and for a bad ``pyggml.batch.split`` call
    "split-mode", "split-args").  ``abort`` is True where the reference stops the process
    (GGML_ASSERT) instead of returning.
    """

    def __init__(self, message: str, *, reason: str, abort: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.abort = abort


class SamplerError(PyggmlError, ValueError):
    """A sampler request the reference aborts on (GGML_ASSERT: an empty candidate array, a chain
    that selects no token, infill without EOT/EOS) or cannot build (an unknown mirostat version),
    or candidate columns of different lengths."""


class SamplerParamError(SamplerError, TypeError):
    """An unknown keyword argument to ``pyggml.Sampler(n_vocab, **params)`` (a TypeError, as any
    unexpected keyword argument)."""


class TokenizerError(PyggmlError, ValueError):
    """Input the reference tokenizer cannot handle: an invalid token id (the reference throws
    std::out_of_range / aborts), a vocabulary it refuses to load, or text that makes it
    throw (e.g. a codepoint above U+10FFFF in a BPE pre-tokenizer)."""


class TemplateError(PyggmlError, ValueError):
    """A chat template that cannot be rendered: a syntax error, an error the reference's Jinja
    engine would raise (common/jinja), ``raise_exception()`` called by the template, a refused
    sandbox escape, or a render that ran past its time/size budget."""


class AllocError(PyggmlError, ValueError):
    """Invalid input to the graph-allocation planner (pyggml.alloc): a bad scenario or graph."""


class AllocAbort(PyggmlError):
    """A ggml-alloc call the reference answers with an abort (GGML_ASSERT / GGML_ABORT).

    ``reason`` is the reference's assert or abort text (e.g. "out of free blocks",
    "graph allocation: failed to reserve memory").
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JSONSchemaError(PyggmlError, ValueError):
    """A JSON schema that common/json-schema-to-grammar.cpp json_schema_to_grammar rejects.

    ``message`` is the reference's ``what()`` (e.g. ``"JSON schema conversion failed:\\nJSON
    schema error at #: unrecognized type kaboom"``), except for reason "json" (the text is not
    JSON; nlohmann's own wording is not reproduced) and "too-deep" (pyggml's bound on nesting,
    where the reference would recurse until its C stack overflows).  ``reason``: "json",
    "schema" (common_chat_schema_from_json failed), "conversion" (the converter's collected
    errors, e.g. an invalid pattern, or an integer range it cannot express), "too-deep".
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class DecodeError(PyggmlError):
    """A decode that llama_decode answers with a non-zero code.

    ``code`` is exactly llama_decode's return value: 1 (no KV cache slot for the batch), 2
    (aborted by the abort callback), -1 (invalid batch), -2 / -3 (fatal: allocation or compute
    failure).  ``message`` is the reference's log line.  ``abort`` is True where the reference
    stops the process (GGML_ASSERT) instead of returning; pyggml raises and its state is unchanged.
    """

    def __init__(self, message: str, *, code: int, abort: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.abort = abort


class GenerationError(PyggmlError, ValueError):
    """A generation request pyggml refuses before decoding (an empty prompt, a prompt that does
    not fit the context, a bad ``max_tokens``), as llama-server answers such requests with an
    error."""


class ParamError(PyggmlError, TypeError):
    """A keyword argument that names no llama_model_params, llama_context_params or
    common_params_sampling field."""
