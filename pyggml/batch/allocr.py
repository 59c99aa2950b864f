"""Batch validation, auto-filled fields and the three ways of cutting a batch into ubatches.

llama.cpp: src/llama-batch.cpp llama_batch_allocr (init, split_simple, split_equal, split_seq,
ubatch_add).  Errors carry the reference's log text word for word (its typos included), so the
paritychecker compares messages as well as outcomes.

Sequence sets are Python ints used as bitsets (bit s = seq s), standing in for
``std::bitset<LLAMA_MAX_SEQ>``.

Speed: every check runs in the reference's order on one of two paths with the same outcome:
plain Python over the entry lists for batches of up to ``_SMALL`` tokens (a decode step; numpy's
per-call overhead would dominate), numpy over the columns otherwise.  Batches with one sequence
per token (the usual case) get vectorized per-seq stats (a one-pass shortcut when each seq's
tokens sit together with positions going up by one), lazily built ``seq_id`` / ``seq_set`` /
``seq_set_map``, and ubatches cut as slices when their tokens form a run of the batch.
tests/batch/test_batch_fastpath.py holds the paths against each other and the reference.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import chain

import numpy as np

from ..errors import BatchError
from .ext import MROPE_SECTIONS, TOKEN_NULL, BatchExt
from .ubatch import MAX_SEQ, UBatch

_ALL = (1 << MAX_SEQ) - 1
_SMALL = 32  # batches up to this many tokens take the plain-Python paths
_SET_SCAN_MAX = 64  # split_equal visits sets instead of tokens up to this many distinct sets
# shared per-sequence objects for one-sequence tokens (a table lookup beats building each)
_ONE_SEQ = [(s,) for s in range(MAX_SEQ)]
_SEQ_BIT = [1 << s for s in range(MAX_SEQ)]
_EMPTY_I32 = np.zeros(0, np.int32)
_EMPTY_I8 = np.zeros(0, np.int8)
_EMPTY_I32.flags.writeable = False
_EMPTY_I8.flags.writeable = False


def _u32_as_i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


class BatchAllocr:
    """Sanitizes a ``BatchExt`` (``init``) and splits it (``split_*`` after ``split_reset``)."""

    def __init__(self, n_pos_per_embd: int = 1) -> None:
        self.n_pos_per_embd = n_pos_per_embd
        self.log: list[str] = []  # warnings of the last init (errors raise BatchError)
        self._reset_state()

    def _reset_state(self) -> None:
        self.n_tokens = 0
        self.n_outputs = 0
        self.token: np.ndarray | None = None
        self.embd: np.ndarray | None = None  # float32 [n_tokens, n_embd]
        self.pos = _EMPTY_I32
        self.output = _EMPTY_I8
        # seq_id, seq_set, seq_set_map: built on first use for one-sequence-per-token batches
        # (from _prim / _groups), assigned by init otherwise
        self._seq_id: list[tuple[int, ...]] | None = []
        self._seq_set: list[int] | None = []
        self._seq_set_map: dict[int, list[int]] | None = {}
        self._groups: tuple | None = None  # (seqs, starts, ends, order or None = batch order)
        self._set_arr: dict[int, np.ndarray] = {}  # seq set -> its token list as an array (single)
        self.seq_id_unq: list[int] = []
        self.has_cpl = False
        self._seq_stats: dict[int, tuple[int, int, int]] = {}  # seq -> (pos min, pos max, n distinct)
        self._prim: list[int] = []  # each token's primary (first iterated) seq id
        self._prim_arr: np.ndarray | None = None  # the same as int64, set when _single and big
        self._single = False  # every token in exactly one sequence
        self.seq_cpl: set[tuple[int, int]] = set()  # (s1, s0): s1 is coupled to s0
        self.out_ids: list[int] = []
        self.n_used = 0
        self.used: list[bool] = []

    @property
    def seq_id(self) -> list[tuple[int, ...]]:
        """Each token's sequence ids, in the reference's iteration order."""
        if self._seq_id is None:
            self._seq_id = list(map(_ONE_SEQ.__getitem__, self._prim))
        return self._seq_id

    @seq_id.setter
    def seq_id(self, v: list[tuple[int, ...]]) -> None:
        self._seq_id = v

    @property
    def seq_set(self) -> list[int]:
        """Each token's sequence set as a bitset."""
        if self._seq_set is None:
            self._seq_set = list(map(_SEQ_BIT.__getitem__, self._prim))
        return self._seq_set

    @property
    def seq_set_map(self) -> dict[int, list[int]]:
        """Sequence set -> its tokens, in batch order."""
        if self._seq_set_map is None:
            seqs, starts, ends, order = self._groups  # type: ignore[misc]
            if order is None:
                order = np.arange(self.n_tokens)
            order_l = order.tolist()
            order32 = order.astype(np.int32)
            m: dict[int, list[int]] = {}
            for s, a, e in zip(seqs, starts, ends, strict=True):
                m[1 << s] = order_l[a:e]
                self._set_arr[1 << s] = order32[a:e]
            self._seq_set_map = m
        return self._seq_set_map

    @property
    def seq_idx(self) -> np.ndarray:
        """int32 [MAX_SEQ]: each sequence's index in ``seq_id_unq``, -1 when absent (built on
        demand: nothing on the decode path reads it)."""
        idx = np.full(MAX_SEQ, -1, np.int32)
        idx[self.seq_id_unq] = np.arange(len(self.seq_id_unq), dtype=np.int32)
        return idx

    # ------------------------------------------------------------------ init
    def init(self, b: BatchExt, *, output_all: bool = False) -> None:
        """Validate ``b`` and take its contents; raises BatchError with the reference's message
        where llama_batch_allocr::init returns false (or aborts, for an empty batch).  After a
        failure the allocator holds no batch (the reference keeps partial state; nothing reads it)."""
        self._reset_state()
        self.log = []
        try:
            self._init(b, output_all)
        except BatchError:
            self._reset_state()
            raise

    def _init(self, b: BatchExt, output_all: bool) -> None:
        n_tok = len(b)
        if n_tok == 0:
            # llama.cpp: GGML_ASSERT(n_tok > 0) aborts the process
            raise BatchError("GGML_ASSERT(n_tok > 0) failed", reason="empty", abort=True)
        n_seq_max = b.n_seq_max & 0xFFFFFFFF  # a uint32_t in the allocator
        self.n_embd = b.n_embd if b.n_embd > 0 else b.n_embd_inp
        if n_seq_max > MAX_SEQ:
            self._fail(f"init: n_seq_max = {_u32_as_i32(n_seq_max)} > {MAX_SEQ}\n", "n_seq_max")
        self.n_seq_max = n_seq_max
        # the same checks in the same order on both paths: plain Python over the entry lists for
        # small batches (a decode step: numpy's per-call overhead dominates), numpy columns else
        if n_tok <= _SMALL and b._cols is None:
            has_token, out_l = self._take_small(b, n_tok, n_seq_max)
            if output_all and not all(out_l):
                self._log_output_all()
                out_l = [True] * n_tok
            self.output = np.array(out_l, dtype=np.int8)
            self.n_outputs = sum(map(bool, out_l))
        else:
            has_token, output = self._take_columns(b, n_tok, n_seq_max)
            if output_all and not output.all():
                self._log_output_all()
                output = np.ones(n_tok, np.int8)
            self.output = output
            self.n_outputs = int(np.count_nonzero(output))
        self.n_tokens = n_tok

        # per-seq positions (first section only for M-RoPE embeddings), coupling records and the
        # sequence set of each token
        pos0 = self.pos[:n_tok]
        big = self._single and n_tok > _SMALL
        one = n_tok == 1 and self._single
        if big:
            bad_i = self._stats_single(self._prim_arr, pos0)  # type: ignore[arg-type]
        elif one:
            # one token in one sequence (the decode step): what _stats_general computes for it
            s = self._prim[0]
            p = int(pos0[0])
            self._seq_set = [_SEQ_BIT[s]]
            self._seq_set_map = {_SEQ_BIT[s]: [0]}
            self._seq_stats = {s: (p, p, 1)}
        else:
            pos0_l = pos0.tolist()
            self._stats_general(pos0_l)
        self.seq_id_unq = sorted(self._seq_stats)

        self._check_positions(b, has_token)
        if big:
            if bad_i >= 0:
                s = self._prim[bad_i]
                self._fail(f"init: sequence {s} positions are decreasing (not allowed)\n", "decreasing")
        elif one:
            # _check_order_general for one token: its only set holds its sequence (never empty),
            # and the position must not be below the start value -1
            if p < -1:
                self._fail(f"init: sequence {s} positions are decreasing (not allowed)\n", "decreasing")
        else:
            self._check_order_general(pos0_l)
        self.split_reset()

    def _log_output_all(self) -> None:
        self.log.append("init: embeddings required but some input tokens were not marked as outputs "
                        "-> overriding\n")

    def _take_small(self, b: BatchExt, n_tok: int, n_seq_max: int) -> tuple[bool, list[bool]]:
        ids = b.ids
        he = b.has_embd
        has_token = ids[0] != TOKEN_NULL
        has_embd = bool(he[0])
        for i in range(1, n_tok):  # (entry 0 matches itself)
            if (ids[i] != TOKEN_NULL) != has_token or bool(he[i]) != has_embd:
                self._fail("init: all entries in the batch must have the same content types\n",
                           "content-types")
        if not has_token and not has_embd:
            self._fail("init: batch has neither token ids nor embeddings\n", "no-content")
        if has_token:
            n_vocab = b.n_vocab
            for i, t in enumerate(ids):
                if t < 0 or t >= n_vocab:
                    self._fail(f"init: invalid token[{i}] = {int(t)}\n", "token")
            self.token = np.array(ids, dtype=np.int32)
        if has_embd:
            self._take_embd(b)
        if has_token:
            self.pos = np.array([p[0] for p in b.pos], dtype=np.int32)
        else:
            pos4 = np.array(b.pos, dtype=np.int32).reshape(n_tok, MROPE_SECTIONS)
            self.pos = pos4[:, : self.n_pos_per_embd].T.reshape(-1)
        ins = b.seq_ins
        single = True
        for r in ins:
            if len(r) != 1:
                single = False
                break
        if single:
            prim_l = [r[0] for r in ins]
            for i, sid in enumerate(prim_l):
                if sid < 0 or sid >= n_seq_max:
                    self._fail(f"init: invalid seq_id[{i}][0] = {sid} >= {n_seq_max}\n", "seq_id")
            self.seq_id = list(map(_ONE_SEQ.__getitem__, prim_l))
        else:
            self._take_seq_general(b, n_tok, n_seq_max)
            prim_l = self._prim
        self._prim = prim_l
        self._single = single
        return has_token, b.output

    def _take_columns(self, b: BatchExt, n_tok: int, n_seq_max: int) -> tuple[bool, np.ndarray]:
        ids, has_embd_v, pos4, output = b.columns()
        has_token = bool(ids[0] != TOKEN_NULL)
        has_embd = bool(has_embd_v[0])
        # the usual token batch first, with a few reductions: every id in range means every
        # entry has a token (no content-type or token error), so only the embedding flags remain
        clean = has_token and ids.min() >= 0 and ids.max() < b.n_vocab and \
            bool(has_embd_v.all() if has_embd else not has_embd_v.any())
        if not clean:
            if (((ids != TOKEN_NULL) != has_token) | (has_embd_v != has_embd)).any():
                self._fail("init: all entries in the batch must have the same content types\n",
                           "content-types")
            if not has_token and not has_embd:
                self._fail("init: batch has neither token ids nor embeddings\n", "no-content")
            if has_token:
                bad = (ids < 0) | (ids >= b.n_vocab)
                if bad.any():
                    i = int(bad.argmax())
                    self._fail(f"init: invalid token[{i}] = {int(ids[i])}\n", "token")
        if has_token:
            self.token = ids.astype(np.int32)
        if has_embd:
            self._take_embd(b)

        if has_token:
            self.pos = pos4[:, 0].copy()
        else:
            self.pos = np.ascontiguousarray(pos4[:, : self.n_pos_per_embd].T).reshape(-1)

        sc = b.seq_column()
        if sc is not None:
            prim_l, prim = sc
            bad = None if prim.min() >= 0 and prim.max() < n_seq_max else (prim < 0) | (prim >= n_seq_max)
            if bad is not None:
                i = int(bad.argmax())
                self._fail(f"init: invalid seq_id[{i}][0] = {prim_l[i]} >= {n_seq_max}\n", "seq_id")
            self._seq_id = None  # built from _prim on first use
            self._prim = prim_l
            self._prim_arr = prim
            self._single = True
        else:
            self._take_seq_general(b, n_tok, n_seq_max)
            self._single = False
        return has_token, output

    def _take_embd(self, b: BatchExt) -> None:
        # the rows in the order they were set, regardless of each entry's embd_off
        # (init copies the raw array): kept as the reference does it
        flat = b.embd
        self.embd = flat[: (flat.size // self.n_embd) * self.n_embd].reshape(-1, self.n_embd) \
            if self.n_embd else flat.reshape(0, 0)

    def _take_seq_general(self, b: BatchExt, n_tok: int, n_seq_max: int) -> None:
        self.seq_id = [b.seq_ids(i) for i in range(n_tok)]
        for i, sids in enumerate(self.seq_id):
            for k, sid in enumerate(sids):
                if sid < 0 or sid >= n_seq_max:
                    self._fail(f"init: invalid seq_id[{i}][{k}] = {sid} >= {n_seq_max}\n", "seq_id")
        self._prim = [sids[0] if sids else -1 for sids in self.seq_id]

    def _stats_single(self, prim: np.ndarray, pos0: np.ndarray) -> int:
        """Per-seq stats of a batch with one sequence per token, vectorized; returns the batch
        index that decides the "decreasing positions" error (-1: none), which init reports only
        after the position checks, as the reference orders them."""
        n = prim.size
        pos = pos0.astype(np.int64)  # differences below must not wrap
        # (seq, position) as one int64 key (seq ids < 256, positions int32; the factor 2**33
        # keeps a change of seq from ever looking like a step of +1)
        key = (prim << 33) + pos
        steps = ((key[1:] - key[:-1]) != 1).nonzero()[0]
        if steps.size <= 512:
            # the usual layout: each seq's tokens together, positions up by one; then every
            # key step other than +1 is a move to a higher seq (checked over those few steps)
            prim_l = self._prim
            cuts = (steps + 1).tolist()
            if all(prim_l[c] > prim_l[c - 1] for c in cuts):
                starts = [0, *cuts]
                ends = [*cuts, n]
                self._groups = ([prim_l[a] for a in starts], starts, ends, None)
                self._seq_set = None
                self._seq_set_map = None
                vals = pos[starts + [e - 1 for e in ends]].tolist()
                k = len(starts)
                # min first, max last, all distinct; only a first position below -1 can be
                # "decreasing" (each seq starts from -1)
                self._seq_stats = dict(zip(self._groups[0], zip(
                    vals[:k], vals[k:], [e - a for a, e in zip(starts, ends, strict=True)], strict=True),
                    strict=True))
                return min((a for a, p in zip(starts, vals[:k], strict=True) if p < -1), default=-1)
        if (prim[1:] >= prim[:-1]).all():
            order = None  # grouped by seq already (the usual layout): batch order
            sp, ps = prim, pos
        else:
            order = prim.argsort(kind="stable")  # batch indices grouped by seq, in batch order
            sp, ps = prim[order], pos[order]
        brk = sp[1:] != sp[:-1]
        cuts = (brk.nonzero()[0] + 1).tolist()
        starts = [0, *cuts]
        ends = [*cuts, n]
        e1 = [e - 1 for e in ends]
        seqs = sp[starts].tolist()
        self._groups = (seqs, starts, ends, order)
        self._seq_set = None
        self._seq_set_map = None
        step = ps[1:] - ps[:-1]
        if ((step == 1) | brk).all():
            # every seq's positions go up by one in batch order: min first, max last, all distinct,
            # and only a first position below -1 can be "decreasing" (each seq starts from -1)
            lo = ps[starts].tolist()
            hi = ps[e1].tolist()
            nd = [e - a for a, e in zip(starts, ends, strict=True)]
            firsts = [a if order is None else int(order[a])
                      for a, p in zip(starts, lo, strict=True) if p < -1]
            bad_i = min(firsts) if firsts else -1
        else:
            # (seq, position) sorted as one int64 key (seq ids < 256, positions int32): grouped
            # by seq like ``sp``, positions increasing inside each group
            key.sort()
            chg = np.zeros(n, np.int64)  # key changes so far: distinct positions per group
            np.cumsum(key[1:] != key[:-1], out=chg[1:])
            base = sp[starts] << 33
            lo = (key[starts] - base).tolist()
            hi = (key[e1] - base).tolist()
            nd = (chg[e1] - chg[starts] + 1).tolist()
            # a position below the previous one of the same seq (in batch order), or a first
            # position below -1
            bad = np.empty(n, bool)
            bad[0] = ps[0] < -1
            np.less(ps[1:], np.where(brk, -1, ps[:-1]), out=bad[1:])
            if bad.any():
                bad_i = int(bad.nonzero()[0].min()) if order is None else int(order[bad].min())
            else:
                bad_i = -1
        self._seq_stats = dict(zip(seqs, zip(lo, hi, nd, strict=True), strict=True))
        return bad_i

    def _stats_general(self, pos0: list[int]) -> None:
        seq_pos: dict[int, set[int]] = {}
        seq_set: list[int] = []
        seq_set_map: dict[int, list[int]] = {}
        self._seq_set = seq_set
        self._seq_set_map = seq_set_map
        for i, sids in enumerate(self.seq_id):
            p = pos0[i]
            mask = 0
            for k, s1 in enumerate(sids):
                seq_pos.setdefault(s1, set()).add(p)
                if k > 0:
                    # s1 is coupled to the token's primary sequence
                    self.seq_cpl.add((s1, sids[0]))
                    self.has_cpl = True
                mask |= 1 << s1
            seq_set.append(mask)
            seq_set_map.setdefault(mask, []).append(i)
        self._seq_stats = {s: (min(ps), max(ps), len(ps)) for s, ps in seq_pos.items()}

    def _check_order_general(self, pos0: list[int]) -> None:
        # a sequence must keep to one family of sequence sets, with non-decreasing positions.
        # (every set of seq s contains s, so the intersection is never empty: the "incompatible
        # sets" branch cannot fire in the reference either; it is kept as the reference has it)
        cur_set: dict[int, int] = {}
        cur_pos: dict[int, int] = {}
        for i, sids in enumerate(self.seq_id):
            p = pos0[i]
            mask = self.seq_set[i]
            for s in sids:
                c = cur_set.get(s, _ALL) & mask
                cur_set[s] = c
                if c == 0:
                    self._fail(f"init: sequence {s} belongs to incompatible sequence sets (not allowed)\n",
                               "seq-sets")
                if p < cur_pos.get(s, -1):
                    self._fail(f"init: sequence {s} positions are decreasing (not allowed)\n", "decreasing")
                cur_pos[s] = p

    def _fail(self, message: str, reason: str) -> None:
        raise BatchError(message, reason=reason)

    def _check_positions(self, b: BatchExt, has_token: bool) -> None:
        mem = b.mem
        stats = self._seq_stats
        if self.n_pos_per_embd > 1:
            # M-RoPE: positions may jump forward; tokens must start after memory, embeddings
            # may overlap its last position
            for s in sorted(stats):
                p0 = mem.seq_pos_max(s) if mem is not None else -1
                y = stats[s][0]
                if p0 >= 0 and (p0 >= y if has_token else p0 > y):
                    rule = "X < Y" if has_token else "X <= Y"
                    self._fail(_inconsistent(s, p0, y) + f" for M-RoPE, it is required that the position "
                               f"satisfies: {rule}\n", "mrope-pos")
        else:
            for s in sorted(stats):
                lo, hi, n_distinct = stats[s]
                p0 = mem.seq_pos_max(s) if mem is not None else -1
                if p0 >= 0 and lo != p0 + 1:
                    self._fail(_inconsistent(s, p0, lo) + " it is required that the sequence positions "
                               "remain consecutive: Y = X + 1\n", "memory-pos")
                if hi - lo + 1 > n_distinct:
                    self._fail(f"init: sequence {s} positions are not continuous\n", "non-continuous")
        if mem is not None:
            for s0, s1 in sorted(self.seq_cpl):
                if (mem.seq_pos_min(s0) != mem.seq_pos_min(s1)
                        or mem.seq_pos_max(s0) != mem.seq_pos_max(s1)):
                    self._fail(f"init: sequence {s0} is coupled to {s1} in the input batch, but have "
                               "divereged\n", "diverged")

    # ------------------------------------------------------------------ queries
    def seq_pos_min(self, s: int) -> int:
        """The smallest position of sequence ``s`` in the batch (-1 if absent)."""
        st = self._seq_stats.get(s)
        return -1 if st is None else st[0]

    def seq_pos_max(self, s: int) -> int:
        st = self._seq_stats.get(s)
        return -1 if st is None else st[1]

    @property
    def seqs(self) -> list[int]:
        """The sequences present in the batch, increasing."""
        return list(self.seq_id_unq)

    # ------------------------------------------------------------------ splits
    def split_reset(self) -> None:
        self.out_ids = []
        self.n_used = 0
        self.used = [False] * self.n_tokens
        self._scan_from = 0  # tokens before it are all used
        self._set_next: dict[int, int] = {}  # seq set -> hint: index in its list of the first unused

    def split_simple(self, n_ubatch: int) -> UBatch | None:
        """The next run of up to ``n_ubatch`` consecutive unused tokens (None when done)."""
        used = self.used
        n = len(used)
        cur = self._first_unused()
        if cur >= n:
            return None
        # at least one token, even for n_ubatch == 0
        end = min(n, cur + max(1, n_ubatch))
        k = end - cur
        # the run is taken whole, used or not, as the reference's loop does
        used[cur:end] = [True] * k
        self._scan_from = end  # every token before ``end`` is used now
        self.n_used += k
        return self._ubatch_run(cur, end)

    def split_equal(self, n_ubatch: int, sequential: bool, n_keep_tail: int = 0) -> UBatch | None:
        """Equal-length runs of non-overlapping sequence sets (None when done, or when
        ``sequential`` meets coupled sequences: the reference logs an error and returns an
        empty ubatch, which callers take as "nothing left")."""
        if sequential and self.has_cpl:
            self.log.append("split_equal: sequential split is not supported when there are coupled sequences "
                            "in the input batch (you may need to use the -kvu flag)\n")
            return None
        used = self.used
        if len(self.seq_set_map) <= _SET_SCAN_MAX and 0 not in self.seq_set_map:
            cur_sets = self._pick_sets(n_ubatch, sequential)
        else:
            cur_sets = self._pick_sets_scan(n_ubatch, sequential)
        n_seqs = len(cur_sets)
        if n_seqs == 0:
            return None
        set_map = self.seq_set_map
        lists = [set_map[m] for m in cur_sets]
        # each set's tokens are consumed front to back (here and by the keep-tail give-back), so
        # the unused ones are a suffix of its list starting at its first unused token
        nxt = self._set_next
        cur = []
        rows = max(1, n_ubatch // n_seqs)
        for m, lst in zip(cur_sets, lists, strict=True):
            k = nxt.get(m, 0)
            while used[lst[k]]:
                k += 1
            cur.append(k)
            # rows of one token per set: until a set runs out, or (rows + 1) * n_seqs > n_ubatch
            rows = min(rows, len(lst) - k)
        per_seq = []
        for s, lst in enumerate(lists):
            k = cur[s]
            part = lst[k: k + rows]
            per_seq.append(part)
            if part[-1] - part[0] == rows - 1:
                used[part[0]: part[-1] + 1] = [True] * rows  # a run of the batch (lists increase)
            else:
                for idx in part:
                    used[idx] = True
            cur[s] = k + rows
        self.n_used += rows * n_seqs
        if n_keep_tail > 0:
            if not n_ubatch > n_keep_tail:
                # llama.cpp: GGML_ASSERT(n_ubatch > n_keep_tail) aborts the process
                raise BatchError("GGML_ASSERT(n_ubatch > n_keep_tail) failed", reason="keep-tail", abort=True)
            n_seqs = self._keep_tail(lists, cur, per_seq, n_ubatch, n_keep_tail)
        for s in range(len(cur_sets)):
            self._set_next[cur_sets[s]] = cur[s] if s < n_seqs else cur[s] - len(per_seq[s])
        idxs = list(chain.from_iterable(per_seq[:n_seqs]))
        if self._single:
            # one sequence per set: the seq ids come per set, not per token
            sq = [m.bit_length() - 1 for m in cur_sets[:n_seqs]]
            seq_id: list[tuple[int, ...]] = []
            for s in range(n_seqs):
                seq_id += [_ONE_SEQ[sq[s]]] * len(per_seq[s])
            return self._ubatch_add(idxs, n_seqs, True, seq_id=seq_id, seq_id_unq=sorted(sq))
        return self._ubatch_add(idxs, n_seqs, True)

    def _pick_sets_scan(self, n_ubatch: int, sequential: bool) -> list[int]:
        # llama_batch_allocr::split_equal's token loop: the sets of the ubatch, in the order the
        # loop meets them
        used = self.used
        sets = self.seq_set
        prim = self._prim
        cur_sets: list[int] = []
        union = 0  # the chosen sets never overlap, so "overlaps one of them" == "overlaps the union"
        last_seq_id = -1
        for i in range(self._first_unused(), self.n_tokens):
            if used[i]:
                continue
            mask = sets[i]
            if mask & union:
                continue
            if sequential and cur_sets and prim[i] != last_seq_id + 1:
                continue
            cur_sets.append(mask)
            union |= mask
            last_seq_id = prim[i]
            # quirk (size-limit overshoot): the set is pushed before the size check, so a
            # ubatch can hold n_ubatch + 1 sequence sets of one token each
            if len(cur_sets) > n_ubatch:
                break
        return cur_sets

    def _pick_sets(self, n_ubatch: int, sequential: bool) -> list[int]:
        """``_pick_sets_scan`` visiting sets instead of tokens (few sets, many tokens).

        Without ``sequential`` the loop adds a set at its first unused token unless it overlaps
        the sets chosen before (the union only grows, so a later token of it would overlap too):
        the sets in the order of their first unused token, minus overlaps.  With ``sequential``
        (no coupled sequences: each set is one sequence) the loop adds the first unused token's
        sequence s, then s + 1 at its first unused token after that one, and so on until a
        sequence has none left after the previous one's."""
        heads = []
        used = self.used
        nxt = self._set_next
        for m, lst in self.seq_set_map.items():
            # the set's first unused token: its unused tokens are a suffix of its list
            k = nxt.get(m, 0)
            n = len(lst)
            while k < n and used[lst[k]]:
                k += 1
            nxt[m] = k
            if k < n:
                heads.append((lst[k], m))
        if not heads:
            return []
        heads.sort()
        cur_sets: list[int] = []
        if not sequential:
            union = 0
            for _, m in heads:
                if m & union:
                    continue
                cur_sets.append(m)
                union |= m
                if len(cur_sets) > n_ubatch:  # the size-limit overshoot quirk, as in the scan
                    break
            return cur_sets
        q, m = heads[0]
        s = self._prim[q]
        cur_sets.append(m)
        set_map = self.seq_set_map
        while len(cur_sets) <= n_ubatch:
            s += 1
            m = 1 << s
            lst = set_map.get(m)
            if lst is None:
                break
            j = max(bisect_right(lst, q), self._set_next.get(m, 0))
            if j >= len(lst):
                break
            q = lst[j]
            cur_sets.append(m)
        return cur_sets

    def _first_unused(self) -> int:
        used = self.used
        i = self._scan_from
        while i < self.n_tokens and used[i]:
            i += 1
        self._scan_from = i
        return i

    def _keep_tail(self, lists: list[list[int]], cur: list[int], per_seq: list[list[int]],
                   n_ubatch: int, n_keep_tail: int) -> int:
        # keep the longest prefix of sets that either finish here or leave >= n_keep_tail tokens
        used = self.used
        n_seqs = len(per_seq)

        def remaining(s: int) -> int:
            return len(lists[s]) - cur[s]

        n_keep = 0
        while n_keep < n_seqs:
            r = remaining(n_keep)
            if r != 0 and r < n_keep_tail:
                break
            n_keep += 1
        if n_keep == 0:
            idxs = per_seq[0]
            if len(idxs) + remaining(0) <= n_ubatch:
                while remaining(0) > 0:  # finish the first set
                    idx = lists[0][cur[0]]
                    idxs.append(idx)
                    used[idx] = True
                    self.n_used += 1
                    cur[0] += 1
            else:
                while remaining(0) < n_keep_tail:  # give back until the tail is whole
                    used[idxs.pop()] = False
                    self.n_used -= 1
                    cur[0] -= 1
            n_keep = 1
        for s in range(n_keep, n_seqs):
            for idx in per_seq[s]:
                used[idx] = False
                self.n_used -= 1
        return n_keep

    def split_seq(self, n_ubatch: int) -> UBatch | None:
        """Tokens of one sequence set, then of its subsets, in batch order (None when done)."""
        used = self.used
        n = self.n_tokens
        cur = self._first_unused()
        if cur >= n:
            return None
        if self._single:
            # one sequence per token: "subset of the current set" means "same sequence", so the
            # ubatch is the next run of that sequence's unused tokens (consumed front to back)
            mask = _SEQ_BIT[self._prim[cur]]
            lst = self.seq_set_map[mask]
            k = self._set_next.get(mask, 0)
            while used[lst[k]]:
                k += 1
            idxs = lst[k: k + max(1, n_ubatch)]
            c = len(idxs)
            if idxs[-1] - idxs[0] == c - 1:
                # a run of the batch (the lists increase): one slice write
                used[idxs[0]: idxs[-1] + 1] = [True] * c
                if idxs[0] == cur:
                    self._scan_from = idxs[-1] + 1  # everything before it is used now
            else:
                for i in idxs:
                    used[i] = True
            self.n_used += c
            self._set_next[mask] = k + len(idxs)
            arr = self._set_arr.get(mask)
            return self._ubatch_add(idxs, 1, True, None if arr is None else arr[k: k + len(idxs)].copy())
        cur_set = self.seq_set[cur]
        idxs: list[int] = []
        while True:
            idxs.append(cur)
            used[cur] = True
            self.n_used += 1
            if len(idxs) >= n_ubatch:
                break
            cur += 1
            while cur < n and (used[cur] or (cur_set & self.seq_set[cur]) != self.seq_set[cur]):
                cur += 1
            if cur == n:
                break
            cur_set = self.seq_set[cur]
        return self._ubatch_add(idxs, 1, True)

    def _seq_id_unq(self, idxs) -> list[int]:
        # the sequences of the ubatch's tokens, increasing
        if self._single:
            return sorted(set(map(self._prim.__getitem__, idxs)))
        unq = 0
        for m in set(map(self.seq_set.__getitem__, idxs)):
            unq |= m
        out = []
        while unq:
            low = unq & -unq
            out.append(low.bit_length() - 1)
            unq ^= low
        return out

    def _ubatch_run(self, a: int, b: int, n_seqs: int = 0, equal_seqs: bool = False) -> UBatch:
        """``_ubatch_add`` for the tokens ``a .. b-1`` in order: slices, no gather (``n_seqs``
        0: one per token, as split_simple counts them)."""
        n_tokens = b - a
        if n_seqs == 0:
            n_seqs = n_tokens
        n_pos = self.n_pos_per_embd
        if self.token is not None:
            pos = np.tile(self.pos[a:b], n_pos) if n_pos > 1 else self.pos[a:b].copy()
        else:
            pos = self.pos.reshape(n_pos, self.n_tokens)[:, a:b].reshape(-1)
            if n_pos == 1:
                pos = pos.copy()
        output = self.output[a:b].copy()
        if n_tokens == 1:
            if output[0]:
                self.out_ids.append(a)
        elif n_tokens <= _SMALL:
            self.out_ids.extend(i for i, o in enumerate(output.tolist(), a) if o)
        else:
            nz = output.nonzero()[0]
            if nz.size:
                self.out_ids.extend((nz + a).tolist())
        if self._single:
            seq_id_unq = [self._prim[a]] if n_seqs == 1 else sorted(set(self._prim[a:b]))
        else:
            seq_id_unq = self._seq_id_unq(range(a, b))
        return UBatch(
            equal_seqs=equal_seqs, n_tokens=n_tokens, n_seq_tokens=n_tokens // n_seqs, n_seqs=n_seqs,
            n_seqs_unq=len(seq_id_unq), n_pos=n_pos,
            token=None if self.token is None else self.token[a:b].copy(),
            embd=None if self.embd is None else self.embd[a:b].copy(),
            pos=pos.astype(np.int32, copy=False), seq_id_unq=seq_id_unq,
            seq_id=self._seq_id[a:b] if self._seq_id is not None else list(map(_ONE_SEQ.__getitem__,
                                                                                self._prim[a:b])),
            output=output, batch_idxs=np.arange(a, b, dtype=np.int32),
        )

    def _ubatch_add(self, idxs: list[int], n_seqs: int, equal_seqs: bool, ix: np.ndarray | None = None,
                    seq_id: list[tuple[int, ...]] | None = None,
                    seq_id_unq: list[int] | None = None) -> UBatch:
        # ``ix``, ``seq_id``, ``seq_id_unq``: given when the caller has them at hand
        n_tokens = len(idxs)
        if n_seqs == 1 and idxs[-1] - idxs[0] == n_tokens - 1:
            # one set's tokens (always increasing) with no gap: a run of the batch
            return self._ubatch_run(idxs[0], idxs[-1] + 1, 1, equal_seqs)
        if ix is None:
            ix = np.array(idxs, dtype=np.int32)
        n_pos = self.n_pos_per_embd
        if self.token is not None:
            # text tokens: the one position is broadcast to every M-RoPE section
            pos = np.tile(self.pos[ix], n_pos) if n_pos > 1 else self.pos[ix]
        else:
            pos = self.pos.reshape(n_pos, self.n_tokens)[:, ix].reshape(-1)
        output = self.output[ix]
        if n_tokens <= _SMALL:
            self.out_ids.extend(i for i, o in zip(idxs, output.tolist(), strict=True) if o)
        else:
            self.out_ids.extend(ix[output != 0].tolist())
        if seq_id is None:
            if self._seq_id is not None:
                seq_id = list(map(self._seq_id.__getitem__, idxs))
            else:
                seq_id = list(map(_ONE_SEQ.__getitem__, map(self._prim.__getitem__, idxs)))
        if seq_id_unq is None:
            seq_id_unq = self._seq_id_unq(idxs)
        return UBatch(
            equal_seqs=equal_seqs, n_tokens=n_tokens, n_seq_tokens=n_tokens // n_seqs, n_seqs=n_seqs,
            n_seqs_unq=len(seq_id_unq), n_pos=n_pos,
            token=None if self.token is None else self.token[ix],
            embd=None if self.embd is None else self.embd[ix],
            pos=pos.astype(np.int32, copy=False), seq_id=seq_id, seq_id_unq=seq_id_unq,
            output=output, batch_idxs=ix,
        )


def _inconsistent(s: int, x: int, y: int) -> str:
    return (f"init: the tokens of sequence {s} in the input batch have inconsistent sequence positions:\n"
            f" - the last position stored in the memory module of the context (i.e. the KV cache) for "
            f"sequence {s} is X = {x}\n"
            f" - the tokens for sequence {s} in the input batch have a starting position of Y = {y}\n")
