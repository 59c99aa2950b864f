"""Parity of the samplers: ``pyggml.sampling`` against the reference's llama.h sampler API.

A case is one sampler (or chain) configuration driven through a sequence of steps on both
sides: each step builds a candidate array (random logits with ties, -inf entries, tiny and huge
values, shuffled ids, sometimes pre-sorted), applies, compares the whole array (ids, logit and
probability bits, selected, sorted) and accepts the selected token plus random history tokens
(penalties, DRY, mirostat and adaptive-p state are carried).  Some steps reset or replace the
sampler by its clone on both sides.  Also diffed: glibc's expf/logf/log2f (through the probe)
against ``pyggml.sampling._fmath`` on adversarial inputs.

Parameters span their valid ranges and the disabled edges (which become the reference's empty
``?name`` samplers).  NaN and +inf logits are outside the contract (the reference's comparator
is not an ordering then) and are not generated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .. import sampling as S
from ..reference import sampling as R
from ..sampling import _fmath
from ..sampling.candidates import Candidates
from . import Case, Options

VOCABS_BIG = (49152, 151936)
Gen = np.random.Generator


def _digest(a: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(a).tobytes(), digest_size=8).hexdigest()


def _canon(c: Candidates) -> dict[str, Any]:
    ids, lg, p = c.ids, c.logits.view(np.uint32), c.p.view(np.uint32)
    return {
        "size": c.size, "selected": c.selected, "sorted": c.sorted,
        "head": [[int(i), f"{int(x):08x}", f"{int(q):08x}"]
                 for i, x, q in zip(ids[:4].tolist(), lg[:4].tolist(), p[:4].tolist(),
                                    strict=True)],
        "ids": _digest(ids), "logits": _digest(lg), "p": _digest(p),
    }


# ---- random inputs -------------------------------------------------------------------------

def _logits(rng: Gen, n: int) -> np.ndarray:
    mode = rng.integers(0, 7)
    if mode == 0:
        lg = rng.normal(0, 3, n)
    elif mode == 1:  # many exact ties (coarser grids on small arrays)
        grid = 4 if n <= 5000 else 4096
        lg = np.round(rng.normal(0, 2, n) * grid) / grid
    elif mode == 2:  # huge range (also past int range in the bucket index)
        lg = rng.normal(0, 1, n) * 10.0 ** rng.integers(1, 12)
    elif mode == 3:  # tiny values
        lg = rng.normal(0, 1, n) * 1e-30
    elif mode == 4:  # a peaked distribution
        lg = rng.normal(0, 1, n)
        lg[rng.integers(0, n, max(1, n // 1000))] += 15
    elif mode == 5:  # model-like: bulk far below a few contenders, with duplicates
        lg = rng.normal(-8, 2, n)
        lg[rng.integers(0, n, min(n, 30))] = rng.normal(8, 1.5, min(n, 30))
        lg[rng.integers(0, n, 8)] = lg[0]
    else:
        lg = rng.uniform(-12, 12, n)
    lg = lg.astype(np.float32)
    if n > 2 and rng.random() < 0.3:  # -inf entries (masked tokens)
        # (capped on big arrays: a huge tie group sends every full sort down the exact,
        # Python-speed replay of libstdc++; a few hundred still exercise it)
        k = int(rng.integers(1, max(2, min(n // 3, 300))))
        lg[rng.integers(0, n, k)] = -np.inf
        lg[rng.integers(0, n)] = np.float32(rng.normal(0, 3))  # keep one finite
    return lg


def _candidates(rng: Gen, n: int) -> Candidates:
    lg = _logits(rng, n)
    ids = np.arange(n, dtype=np.int32)
    identity = True
    if rng.random() < 0.25:
        ids = rng.permutation(n).astype(np.int32)
        identity = False
    elif rng.random() < 0.2:  # the same rows without the identity hint: the searching paths
        identity = False
    srt = False
    if rng.random() < 0.15:  # pre-sorted input, flagged as such
        order = np.argsort(-lg.astype(np.float64), kind="stable")
        ids, lg, srt, identity = ids[order], lg[order], True, False
    p = np.zeros(n, np.float32)
    if rng.random() < 0.2:
        p = rng.random(n).astype(np.float32)
    c = Candidates.from_arrays(ids, lg, p, sorted=srt)
    c.identity_ids = identity
    return c


def _f(rng: Gen, *choices: float) -> float:
    return float(np.float32(choices[int(rng.integers(0, len(choices)))]))


def _i(rng: Gen, *choices: int) -> int:
    return int(choices[int(rng.integers(0, len(choices)))])


def _seed(rng: Gen) -> int:
    return int(rng.integers(0, 0xFFFFFFFE))


# ---- the sampler table: name -> (params generator, pyggml ctor, reference ctor, max size) ---

Maker = tuple[Callable[[Gen, int], dict[str, Any]], Callable[..., Any], Callable[..., Any], int]

SAMPLERS: dict[str, Maker] = {
    "greedy": (lambda r, n: {}, S.init_greedy, R.greedy, 10**6),
    "dist": (lambda r, n: {"seed": _seed(r)}, S.init_dist, R.dist, 10**6),
    "top_k": (lambda r, n: {"k": _i(r, -1, 0, 1, 2, 5, 40, 128, 129, 200, 300, n + 3)},
              S.init_top_k, R.top_k, 10**6),
    "top_p": (lambda r, n: {"p": _f(r, 0.0, 0.1, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0),
                            "min_keep": _i(r, 0, 1, 2, 5, 300)},
              S.init_top_p, R.top_p, 10**6),
    "min_p": (lambda r, n: {"p": _f(r, -0.1, 0.0, 0.01, 0.05, 0.1, 0.5, 0.9, 1.0),
                            "min_keep": _i(r, 0, 1, 3, 50)},
              S.init_min_p, R.min_p, 10**6),
    "typical": (lambda r, n: {"p": _f(r, 0.1, 0.5, 0.9, 0.95, 1.0),
                              "min_keep": _i(r, 0, 1, 5)},
                S.init_typical, R.typical, 20000),
    "temp": (lambda r, n: {"t": _f(r, -1.0, 0.0, 0.3, 0.8, 1.0, 1.7)},
             S.init_temp, R.temp, 10**6),
    "temp_ext": (lambda r, n: {"t": _f(r, 0.0, 0.5, 0.8, 1.0, 1.5),
                               "delta": _f(r, -0.5, 0.0, 0.2, 0.5, 1.0),
                               "exponent": _f(r, 0.5, 1.0, 1.5, 3.0)},
                 S.init_temp_ext, R.temp_ext, 20000),
    "xtc": (lambda r, n: {"p": _f(r, 0.0, 0.3, 0.7, 1.0), "t": _f(r, 0.01, 0.05, 0.1, 0.5, 0.6),
                          "min_keep": _i(r, 0, 1, 2, 10), "seed": _seed(r)},
            S.init_xtc, R.xtc, 10**6),
    "top_n_sigma": (lambda r, n: {"n": _f(r, -1.0, 0.0, 0.5, 1.0, 2.0, 4.0)},
                    S.init_top_n_sigma, R.top_n_sigma, 20000),
    "mirostat": (lambda r, n: {"n_vocab": n, "seed": _seed(r), "tau": _f(r, 0.5, 3.0, 5.0, 9.0),
                               "eta": _f(r, 0.05, 0.1, 0.5), "m": _i(r, 0, 1, 2, 10, 100)},
                 S.init_mirostat, R.mirostat, 20000),
    "mirostat_v2": (lambda r, n: {"seed": _seed(r), "tau": _f(r, 0.5, 3.0, 5.0, 9.0),
                                  "eta": _f(r, 0.05, 0.1, 0.5)},
                    S.init_mirostat_v2, R.mirostat_v2, 10**6),
    "penalties": (lambda r, n: {"n_vocab": n, "last_n": _i(r, -1, 0, 1, 8, 64),
                                "repeat": _f(r, 0.5, 1.0, 1.1, 1.5),
                                "freq": _f(r, 0.0, 0.3, -0.2), "present": _f(r, 0.0, 0.5, -0.1)},
                  S.init_penalties, R.penalties, 10**6),
    "dry": (lambda r, n: {"multiplier": _f(r, 0.0, 0.8, 2.0), "base": _f(r, 0.9, 1.0, 1.75, 3.0),
                          "allowed_length": _i(r, 0, 1, 2, 4), "last_n": _i(r, -1, 0, 16, 64),
                          "breakers": [[int(t) for t in r.integers(0, 12, int(r.integers(1, 4)))]
                                       for _ in range(int(r.integers(1, 4)))]},
            S.init_dry_tokens, R.dry_tokens, 10**6),
    "adaptive_p": (lambda r, n: {"target": _f(r, -1.0, 0.0, 0.1, 0.3, 0.9, 1.2),
                                 "decay": _f(r, -0.5, 0.0, 0.5, 0.9, 0.99, 1.5), "seed": _seed(r)},
                   S.init_adaptive_p, R.adaptive_p, 10**6),
    "logit_bias": (lambda r, n: {"n_vocab": n, "biases": [
        (int(t), float(np.float32(b))) for t, b in zip(
            r.integers(-2, n + 3, int(r.integers(0, 6))).tolist(),
            r.normal(0, 5, 6).tolist(), strict=False)]},
        S.init_logit_bias, R.logit_bias, 10**6),
}

# samplers that abort in the reference on an empty array (softmax asserts size > 0)
_NEEDS_ITEMS = {"top_p", "typical", "temp_ext", "xtc", "mirostat", "mirostat_v2", "adaptive_p"}


# ---- the reference tools' sampler: common_sampler_init + common_sampler_sample ---------------
#
# ``pyggml.Sampler(n_vocab, vocab=..., **params)`` against the reference's own constructor
# (common_sampler_init over a real model, through the probe) from the same common_params_sampling
# fields: the chain's member names in order, then every pick of common_sampler_sample and the
# candidate array it left, over seeded logit rows; each pick is accepted the way the tools do
# (common_sampler_accept(token, is_generated=true)), after a prompt accepted with
# is_generated=false.  Hosts: SmolLM2 (49,152 tokens) and a tiny llama model of 300 tokens with
# suppress tokens (which common_sampler_init turns into -inf logit biases).

# how the tools' --samplers may spell each sampler (common_sampler_types_from_names), plus names
# it does not know (skipped with a warning)
_SPELLINGS: dict[str, tuple[str, ...]] = {
    "penalties": ("penalties", "PENALTIES"),
    "dry": ("dry", "Dry"),
    "top_n_sigma": ("top_n_sigma", "top-n-sigma", "topnsigma"),
    "top_k": ("top_k", "top-k", "topk", "Top_K"),
    "typ_p": ("typ_p", "typ-p", "typp", "typ"),
    "top_p": ("top_p", "top-p", "topp", "nucleus"),
    "min_p": ("min_p", "min-p", "minp"),
    "xtc": ("xtc", "XTC"),
    "temperature": ("temperature", "temp", "Temp"),
    "adaptive_p": ("adaptive_p", "adaptive-p", "adaptivep"),
    "infill": ("infill",),
}
_UNKNOWN_NAMES = ("dist", "greedy", "top_x", "", "temp_ext", "mirostat", "typical")
_BREAKERS = ("\n", ":", '"', "*", " the", "Question:", "\u00e9", "", "\n\n", "t1")
TINY_VOCAB = 300
TINY_SUPPRESS = (5, 17, TINY_VOCAB - 1, TINY_VOCAB + 4, -3)  # the last two are dropped at load


def _samplers(rng: Gen, n_vocab: int) -> list[str]:
    names = list(_SPELLINGS)
    if rng.random() < 0.9 or n_vocab > 1000:
        # infill is rarer; and both sides compare every candidate pair's pieces (O(n^2)), which
        # over a full 49,152-token row takes the reference minutes
        names.remove("infill")
    k = int(rng.integers(0, len(names) + 1))
    picked = [names[int(i)] for i in rng.permutation(len(names))[:k]]
    if rng.random() < 0.15 and picked:
        picked.append(picked[int(rng.integers(0, len(picked)))])  # a sampler twice
    out = [_SPELLINGS[n][int(rng.integers(0, len(_SPELLINGS[n])))] for n in picked]
    if rng.random() < 0.2:
        out.insert(int(rng.integers(0, len(out) + 1)),
                   _UNKNOWN_NAMES[int(rng.integers(0, len(_UNKNOWN_NAMES)))])
    return out


def common_params(rng: Gen, n_vocab: int, invalid: bool = True) -> dict[str, Any]:
    """Random common_params_sampling fields over their valid ranges and disabled edges (each
    field set or left at its default); with ``invalid``, sometimes a penalty the reference's
    constructor refuses."""
    p: dict[str, Any] = {"seed": _seed(rng)}
    choices: dict[str, tuple[Any, ...]] = {
        "min_keep": (0, 1, 3, 50),
        "top_k": (-1, 0, 1, 5, 40, 200),
        "top_p": (0.0, 0.3, 0.8, 0.95, 1.0),
        "min_p": (0.0, 0.02, 0.05, 0.3, 1.0),
        "xtc_probability": (0.0, 0.5, 1.0),
        "xtc_threshold": (0.01, 0.1, 0.3, 0.6),
        "typ_p": (0.3, 0.9, 1.0),
        "temp": (-1.0, 0.0, 0.5, 0.8, 1.0, 1.5),
        "dynatemp_range": (0.0, 0.3, 1.0),
        "dynatemp_exponent": (0.5, 1.0, 2.0),
        "penalty_last_n": (-1, 0, 8, 64),
        "penalty_repeat": (0.8, 1.0, 1.1, 1.5),
        "penalty_freq": (0.0, 0.3, -0.2),
        "penalty_present": (0.0, 0.2, -0.1),
        "dry_multiplier": (0.0, 0.8, 2.0),
        "dry_base": (0.5, 1.0, 1.75, 3.0),
        "dry_allowed_length": (0, 1, 2, 4),
        "dry_penalty_last_n": (-1, 0, 16, 64),
        "adaptive_target": (-1.0, 0.0, 0.1, 0.5, 0.9),
        "adaptive_decay": (0.0, 0.5, 0.9, 0.99),
        "top_n_sigma": (-1.0, 0.0, 0.5, 2.0),
        "mirostat_tau": (0.5, 3.0, 5.0),
        "mirostat_eta": (0.05, 0.1, 0.5),
    }
    for key, vals in choices.items():
        if rng.random() < 0.45:
            v = vals[int(rng.integers(0, len(vals)))]
            p[key] = float(np.float32(v)) if isinstance(v, float) else int(v)
    if rng.random() < 0.25:
        p["mirostat"] = _i(rng, 1, 2)
    if rng.random() < 0.5:
        p["samplers"] = _samplers(rng, n_vocab)
    if rng.random() < 0.3:
        k = int(rng.integers(1, len(_BREAKERS) + 1))
        p["dry_sequence_breakers"] = [_BREAKERS[int(i)] for i in rng.permutation(len(_BREAKERS))[:k]]
    if rng.random() < 0.3:
        p["logit_bias"] = [
            (int(rng.integers(-2, n_vocab + 3)),
             float("-inf") if rng.random() < 0.2 else float(np.float32(rng.normal(0, 5))))
            for _ in range(int(rng.integers(1, 6)))]
    if invalid and rng.random() < 0.06:
        key, bad = [("penalty_repeat", 0.0), ("penalty_repeat", -1.0), ("penalty_repeat", float("inf")),
                    ("penalty_repeat", 1e-39), ("penalty_freq", float("nan")),
                    ("penalty_present", float("-inf"))][int(rng.integers(0, 6))]
        p[key] = bad
    return p


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """JSON has no inf/nan: those travel as strings (the probe reads them with strtof)."""
    def enc(v: Any) -> Any:
        return v if not isinstance(v, float) or np.isfinite(v) else repr(v)
    out = {k: enc(v) for k, v in params.items()}
    if "logit_bias" in params:
        out["logit_bias"] = [[t, enc(b)] for t, b in params["logit_bias"]]
    return out


def _tiny_host_model() -> Any:
    from gguf import GGUFValueType as VT

    from . import tinymodels
    from .corpus import cache_dir

    path = cache_dir() / "sampling_models" / f"tiny-v{TINY_VOCAB}-suppress.gguf"
    if not path.exists():
        model = tinymodels.build(tinymodels.TinySpec(n_vocab=TINY_VOCAB, n_layer=1, seed=3))
        model.kv.append(tinymodels.KVEntry("tokenizer.ggml.suppress_tokens", VT.ARRAY,
                                           list(TINY_SUPPRESS), VT.INT32))
        tinymodels.write(model, path.parent, path.stem)
    return path


class CommonHosts:
    """The reference hosts and pyggml vocabularies the common-sampler cases run on."""

    def __init__(self) -> None:
        from ..reference.common_sampling import Host
        from ..vocab import Vocab
        from . import corpus

        self.hosts = {}
        for label, path in (("smollm2", corpus.smollm2()), (f"tiny{TINY_VOCAB}", _tiny_host_model())):
            self.hosts[label] = (Host(path), Vocab.from_gguf(path))

    def close(self) -> None:
        for host, _ in self.hosts.values():
            host.close()


def _row_logits(rng: Gen, n: int, hot: np.ndarray) -> np.ndarray:
    lg = _logits(rng, n)
    if rng.random() < 0.7:  # a few contenders the history keeps repeating (penalties, DRY)
        lg[hot] = np.float32(lg.max(initial=0.0) if np.isfinite(lg.max()) else 0.0) + \
            rng.normal(0, 1.5, hot.size).astype(np.float32)
    return lg


def common_run(rng: Gen, host: Any, vocab: Any, params: dict[str, Any],
               steps: int) -> tuple[list[Any], list[Any]]:
    """Build both samplers from ``params`` and drive them; (pyggml's record, the reference's)."""
    from ..errors import SamplerError, TokenizerError
    from ..reference.common_sampling import CommonSampler, CommonSamplerError

    n = host.n_vocab
    out_o: list[Any] = []
    out_r: list[Any] = []
    try:
        o = S.Sampler(n, vocab=vocab, **params)
        out_o.append(o.names())
    except SamplerError as e:  # common_sampler_init's argument checks (std::invalid_argument)
        o = None
        out_o.append({"error": "invalid_argument", "message": str(e)})
    except TokenizerError as e:  # the vocabulary cannot encode a DRY breaker
        o = None
        kind = "out_of_range" if "std::out_of_range" in str(e) else "tokenizer"
        out_o.append({"error": kind, "message": None})
    try:
        r = CommonSampler(host, _jsonable(params))
        out_r.append(r.names())
    except CommonSamplerError as e:
        r = None
        # the text of a library exception (std::out_of_range: "unordered_map::at") is not
        # the reference's own; its own checks' messages are compared
        out_r.append({"error": e.kind, "message": str(e) if e.kind == "invalid_argument" else None})
    if o is None or r is None or out_o != out_r:
        return out_o, out_r
    hot = rng.integers(0, n, int(rng.integers(2, 9)))
    for t in hot[rng.integers(0, hot.size, int(rng.integers(0, 24)))].tolist():
        o.accept(t)  # the prompt (the tools: common_sampler_accept(token, false))
        r.accept(t, False)
    for _ in range(steps):
        u = rng.random()
        if u < 0.04:
            o.reset()
            r.reset()
        elif u < 0.08:
            o, r = o.clone(), r.clone()
        lg = _row_logits(rng, n, hot)
        try:
            tok_o = o.sample(lg)
        except SamplerError:
            tok_o = -1
        rec_o = [tok_o, _canon(o.last)]
        tok_r, sel = r.sample(lg)
        ids, lgs, ps, srt = r.candidates()
        rec_r = [tok_r, _canon(Candidates(ids, lgs, ps, sel, srt))]
        out_o.append(rec_o)
        out_r.append(rec_r)
        if rec_o != rec_r or tok_r < 0:
            break
        r.accept(tok_r, True)  # pyggml's sample() accepted already
    return out_o, out_r


def _common_cases(rng: Gen, full: bool) -> Iterator[Case]:
    hosts = CommonHosts()
    try:
        host, vocab = hosts.hosts["smollm2"]
        # the defaults: the chain (seed left random on both sides), then picks under fixed seeds
        yield Case("common/defaults", *common_run(rng, host, vocab, {}, 0))
        for _ in range(8 if full else 3):
            seed = _seed(rng)
            so, sr = common_run(rng, host, vocab, {"seed": seed}, 24 if full else 8)
            yield Case(f"common/defaults seed={seed}", so, sr)
        for i in range(240 if full else 20):
            label = "smollm2" if rng.random() < 0.7 else f"tiny{TINY_VOCAB}"
            host, vocab = hosts.hosts[label]
            params = common_params(rng, host.n_vocab)
            so, sr = common_run(rng, host, vocab, params, 24 if full else 8)
            yield Case(f"common/{i} {label} {params}", so, sr)
    finally:
        hosts.close()


# ---- driving a sequence ---------------------------------------------------------------------

def run_sequence(rng: Gen, ours: Any, ref: Any, n: int, steps: int,
                 need_items: bool = True) -> tuple[list[Any], list[Any]]:
    """Apply/accept ``steps`` times on both sides; returns both per-step outcomes."""
    out_o: list[Any] = [ours.name, [s.name for s in getattr(ours, "samplers", [])]]
    out_r: list[Any] = [ref.name, ref.member_names()]
    alphabet = int(rng.integers(3, 12))  # small history alphabet: repeats for penalties/DRY
    for _ in range(steps):
        r = rng.random()
        if r < 0.03:
            ours.reset()
            ref.reset()
        elif r < 0.06:
            ours, ref = ours.clone(), ref.clone()
        size = n if rng.random() < 0.8 else int(rng.integers(1 if need_items else 0, n + 1))
        a = _candidates(rng, size)
        b = a.copy()
        ours.apply(a)
        ref.apply(b)
        ca, cb = _canon(a), _canon(b)
        out_o.append(ca)
        out_r.append(cb)
        if ca != cb:
            break  # the states differ from here on; one mismatch per case is enough
        hist = [int(t) for t in rng.integers(0, alphabet, int(rng.integers(0, 3)))]
        if 0 <= a.selected < a.size:
            hist.append(int(a.ids[a.selected]))
        elif rng.random() < 0.5:
            hist.append(int(rng.integers(0, alphabet)))
        for t in hist:
            ours.accept(t)
            ref.accept(t)
    return out_o, out_r


def _sizes(rng: Gen, full: bool, cap: int) -> int:
    small = (1, 2, 3, 5, 17, 40, 129, 257, 1000, 1024, 1025, 3000)
    if rng.random() < (0.06 if full else 0.04):
        n = VOCABS_BIG[int(rng.integers(0, 2))]
    else:
        n = small[int(rng.integers(0, len(small)))]
    return min(n, cap)


def _fmath_cases(rng: Gen, full: bool) -> Iterator[Case]:
    """glibc expf/logf/log2f (probe) vs pyggml's vector versions, on adversarial inputs."""
    n = 1 << (20 if full else 16)
    xs = {
        "expf": np.concatenate([
            -rng.exponential(8, n), rng.uniform(-104.5, 89, n), rng.normal(0, 1e-3, n),
            np.array([float.fromhex("0x1.fefe02p-16"), float.fromhex("0x1.5b3c52p-14"),
                      -103.97, -103.28, 88.72, -87.34, 0.0, -0.0, -np.inf], dtype=np.float64)]),
        "logf": np.concatenate([rng.random(n), np.exp(rng.uniform(-100, 80, n)),
                                1 + rng.normal(0, 1e-4, n), np.array([0.0, 1.0, 1e-45])]),
    }
    xs["log2f"] = xs["logf"]
    fn = {"expf": _fmath.expf, "logf": _fmath.logf, "log2f": _fmath.log2f}
    for op, x in xs.items():
        x32 = x.astype(np.float32)
        for lo in range(0, x32.size, 1 << 15):
            chunk = x32[lo:lo + (1 << 15)]
            ours = fn[op](chunk).view(np.uint32)
            ref = R.libm_f32(op, chunk).view(np.uint32)
            bad = np.flatnonzero(ours != ref)
            yield Case(f"fmath/{op}/{lo}",
                       {"n": int(chunk.size), "bad": [hex(int(v)) for v in
                                                      chunk[bad[:3]].view(np.uint32)]},
                       {"n": int(chunk.size), "bad": []})


DRY_VOCABS = ("ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf")
DRY_BREAKERS = (b"\n", b":", b'"', b"*", b"Question:", b" the end", b"\xe2\x80\x9c")


def _dry_vocab_cases(rng: Gen, full: bool) -> Iterator[Case]:
    """DRY built from breaker strings: ours tokenizes them through the reference's tokenizer
    (the pluggable vocab), the reference through llama_sampler_init_dry with the same vocab."""
    from ..reference.vocab import RefVocab
    from . import corpus

    files = {f.name: f for f in corpus.vocab_ggufs()}
    for fname in DRY_VOCABS if full else DRY_VOCABS[:1]:
        vocab = RefVocab(files[fname])
        try:
            text = b"Question: what is it? \"A*B\": the end.\nQuestion: again the end\n"
            pool = vocab.tokenize(text, False, False)
            bv = R.BreakerVocab(vocab)
            for i in range(4 if full else 2):
                breakers = list(DRY_BREAKERS[: int(rng.integers(1, len(DRY_BREAKERS) + 1))])
                args = (_f(rng, 0.8, 2.0), _f(rng, 1.5, 1.75), _i(rng, 1, 2), _i(rng, 32, 64))
                o = S.init_dry(bv, *args, breakers)
                r = R.dry(vocab, *args, breakers)
                # a repetitive history with breaker tokens in it, ending inside a repeat
                for t in pool * 2 + pool[: len(pool) // 2]:
                    o.accept(t)
                    r.accept(t)
                so, sr = run_sequence(rng, o, r, vocab.n_tokens, 6 if full else 3)
                yield Case(f"dry_vocab/{fname}/{i} {args} {breakers}", so, sr)
        finally:
            vocab.close()


INFILL_VOCABS = ["ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-qwen2.gguf"]


def _infill_cases(rng: Gen, full: bool) -> Iterator[Case]:
    """Infill over real vocabs (our Vocab vs the reference's): candidate sets with EOG tokens
    boosted by varying amounts and runs of neighbouring ids (pieces that prefix each other)."""
    from ..reference.vocab import RefVocab
    from ..vocab import Vocab
    from . import corpus

    files = {f.name: f for f in corpus.vocab_ggufs()}
    for fname in INFILL_VOCABS if full else INFILL_VOCABS[:1]:
        ours_v, ref_v = Vocab.from_gguf(files[fname]), RefVocab(files[fname])
        try:
            eog = sorted(ours_v.eog)
            for i in range(100 if full else 12):
                # huge logits over more than 128 candidates: the bucket sort misorders them, the
                # softmax overflows into NaN p, and infill's thresholds keep NaN entries
                scale = _f(rng, 1.0, 3.0, 3e9)
                n = int(rng.integers(1, 120 if scale < 1e6 else 400))
                start = int(rng.integers(0, ours_v.n_tokens - n))
                ids = np.unique(np.concatenate([
                    np.arange(start, start + n // 2),
                    rng.choice(ours_v.n_tokens, size=n - n // 2, replace=False)]).astype(np.int32))
                logits = rng.normal(0, scale, ids.size).astype(np.float32)
                boost = _f(rng, 0.0, 2.0, 8.0, 30.0)
                if eog and boost and ids.size >= 2:
                    ids[0] = eog[0]
                    logits[0] += np.float32(boost)
                ids, first = np.unique(ids, return_index=True)
                logits = logits[first]
                o, r = S.init_infill(ours_v), R.infill(ref_v)
                a = Candidates.from_arrays(ids, logits)
                b = a.copy()
                o.apply(a)
                r.apply(b)
                yield Case(f"infill/{fname}/{i} n={ids.size} boost={boost}",
                           [o.name, _canon(a)], [r.name, _canon(b)])
        finally:
            ref_v.close()


def cases(opts: Options) -> Iterator[Case]:
    rng = np.random.default_rng(opts.seed + 6)
    yield from _fmath_cases(rng, opts.full)
    yield from _dry_vocab_cases(rng, opts.full)
    yield from _infill_cases(rng, opts.full)
    per_sampler = 290 if opts.full else 16
    steps = 100 if opts.full else 10
    for name, (gen, mk_o, mk_r, cap) in SAMPLERS.items():
        for i in range(per_sampler):
            n = _sizes(rng, opts.full, cap)
            params = gen(rng, n)
            need = name in _NEEDS_ITEMS
            o, r = mk_o(**params), mk_r(**params)
            if o.name != r.name:
                yield Case(f"{name}/{i}/name", o.name, r.name)
                continue
            so, sr = run_sequence(rng, o, r, n, steps if n < 20000 else max(3, steps // 10),
                                  need or n >= 1)
            yield Case(f"{name}/{i} n={n} {params if len(str(params)) < 200 else ''}", so, sr)
    yield from _common_cases(rng, opts.full)
