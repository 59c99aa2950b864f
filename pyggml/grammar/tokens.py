"""The candidates filter over a whole vocabulary, fast: a token trie built once per vocabulary.

llama.cpp: src/llama-grammar.cpp llama_grammar_apply_impl / llama_grammar_reject_candidates
walks every candidate through every stack, one code point at a time.  A token survives iff
some stack accepts it, so the same answer comes from walking the trie of the tokens' code
points once, carrying the set of stacks reached by each prefix:

- a token whose piece ends at a node (its 0 terminator) survives when its trailing partial
  UTF-8 sequence is empty (any stack then accepts it) or some char-topped stack could be
  completed by it (llama_grammar_match_partial_char);
- a stack topped by a token element accepts, at any depth, the tokens still having code
  points left whose id it matches (the reference checks the id there, not the rest);
- a char-topped stack moves to the children whose code point it matches, advanced.

Only the start state with no partial UTF-8 pending uses the trie (the pieces' decoding
depends on it); otherwise ``Grammar.apply`` takes the reference's candidate-by-candidate walk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import GrammarError
from .parser import CHAR, CHAR_ANY, CHAR_NOT, TOKEN
from .runtime import Grammar, GrammarVocab, Stack, decode_utf8, match_partial_char

_DEAD, _EOG, _LIVE = 0, 1, 2
_CharSet = tuple[bool, tuple[tuple[int, int], ...]]  # (positive, code point ranges)
_CHAR_TYPES = (CHAR, CHAR_NOT, CHAR_ANY)


class TokenIndex:
    """Per-vocabulary structures, built once: each token's status (dead: empty or NUL-led
    piece; EOG; live) and the trie of live tokens' code points (decoded from a clean UTF-8
    state) laid out breadth first in flat arrays, so that ``allowed`` works a whole trie level
    at a time with numpy.  Live tokens are numbered depth first ("dfs index"), so the tokens
    below a node are one contiguous range."""

    def __init__(self, vocab: GrammarVocab, n_tokens: int) -> None:
        self.n_tokens = n_tokens
        self.status = np.zeros(n_tokens, dtype=np.int8)
        keyed: list[tuple[tuple[int, ...], int, int, int]] = []  # (code points, token, partial)
        for t in range(n_tokens):
            piece = vocab.piece(t)
            if vocab.is_eog(t):
                self.status[t] = _EOG
            elif not piece or piece[0] == 0:
                self.status[t] = _DEAD
            else:
                self.status[t] = _LIVE
                try:
                    # strictly valid UTF-8 decodes the same as the reference's decode_utf8,
                    # with nothing pending at its end
                    key = tuple(map(ord, piece.decode("utf-8")))
                    keyed.append((key, t, 0, 0))
                except UnicodeDecodeError:
                    cps, (val, rem) = decode_utf8(piece, (0, 0))
                    keyed.append((tuple(cps[:-1]), t, val, rem))
        # Sorted by code points (then id), the tokens come in the trie's depth-first order: a
        # node's own tokens first, then its subtrees in code point order ("dfs index").  Nodes
        # are created in preorder where a key leaves the previous key's prefix.
        keyed.sort()
        n_live = len(keyed)
        depth: list[int] = [0]
        edge: list[int] = [0]
        parent: list[int] = [-1]
        inner: list[int] = [0]
        end: list[int] = [0]
        term: list[int] = []
        path: list[int] = [0]     # path[d]: the node of the current key's prefix of length d
        prev: tuple[int, ...] = ()
        for i, (key, _, _, _) in enumerate(keyed):
            lcp, m = 0, min(len(key), len(prev))
            while lcp < m and key[lcp] == prev[lcp]:
                lcp += 1
            for node in path[lcp + 1:]:
                end[node] = i
            del path[lcp + 1:]
            for d in range(lcp + 1, len(key) + 1):
                node = len(depth)
                depth.append(d)
                edge.append(key[d - 1])
                parent.append(path[-1])
                inner.append(i)
                end.append(i)
                path.append(node)
            node = path[len(key)]
            if inner[node] == i:
                inner[node] = i + 1   # one more of the node's own tokens
            term.append(node)
            prev = key
        for node in path:
            end[node] = n_live
        # breadth-first layout: by depth, then preorder; a node's children are then
        # consecutive, in code point order, in the order of their parents
        n_nodes = len(depth)
        bfs = np.lexsort((np.arange(n_nodes), np.array(depth, dtype=np.int64)))
        pos = np.empty(n_nodes, dtype=np.int64)
        pos[bfs] = np.arange(n_nodes)
        par = np.array(parent, dtype=np.int64)[bfs][1:]
        counts = np.bincount(pos[par], minlength=n_nodes)
        self.child_lo = 1 + np.cumsum(counts) - counts
        self.child_hi = self.child_lo + counts
        self.edge_cp = np.array(edge, dtype=np.int64)[bfs]          # (n_nodes,) code point into the node
        self.inner = np.array(inner, dtype=np.int64)[bfs]
        self.end = np.array(end, dtype=np.int64)[bfs]
        self.order = np.array([k[1] for k in keyed], dtype=np.int64)  # dfs index -> token
        self.rank = np.full(n_tokens, -1, dtype=np.int64)            # token -> dfs index (-1: not live)
        self.rank[self.order] = np.arange(n_live)
        self.term_node = pos[np.array(term, dtype=np.int64)] if term else np.zeros(0, dtype=np.int64)
        self.term_rem = np.array([k[3] for k in keyed], dtype=np.int64)
        self.term_val = np.array([k[2] for k in keyed], dtype=np.int64)
        child_lo, child_hi, cps_in = self.child_lo.tolist(), self.child_hi.tolist(), self.edge_cp.tolist()
        # plain lists for the node-by-node walk of sparse levels
        self.child_lo_l: list[int] = child_lo
        self.child_hi_l: list[int] = child_hi
        self.edge_cp_l: list[int] = cps_in
        self.inner_l: list[int] = self.inner.tolist()
        self.end_l: list[int] = self.end.tolist()

    def allowed(self, g: Grammar) -> np.ndarray:
        """(n_tokens,) bool: the tokens llama_grammar_apply_impl leaves finite, for a grammar
        with no partial UTF-8 pending.

        The trie is walked one level at a time; each node carries a "state" (the stack set
        reached by its prefix).  Levels with many nodes are matched with numpy; the deep,
        sparse levels node by node in Python (numpy's per-call cost dominates there).  The
        state reached from a state through a set of matching char-topped stacks is cached on
        the grammar (it depends on the rules only)."""
        rules = g.rules
        types, values, charsets = rules.types, rules.values, rules.charsets
        n_live = len(self.order)
        acc = np.zeros(n_live, dtype=bool)
        node_state = np.full(len(self.edge_cp), -1, dtype=np.int64)
        states: list[tuple[Stack, ...]] = []
        state_id: dict[tuple[Stack, ...], int] = {}
        # per state id: (char-topped stacks, their (positive, ranges)), token-topped (type, value)
        info: list[tuple[list[Stack], list[_CharSet], list[tuple[int, int]]]] = []
        # (stack set, matching char-topped stacks) -> stack set after the char, shared by clones
        trans_cache = g._trie_cache
        local_trans: dict[tuple[int, tuple[int, ...]], int] = {}
        token_not: dict[int, np.ndarray] = {}   # TOKEN_NOT value -> range-cover difference array
        token_hits: list[int] = []              # dfs indexes accepted by a TOKEN element

        def intern(stacks: tuple[Stack, ...]) -> int:
            sid = state_id.get(stacks)
            if sid is None:
                sid = state_id[stacks] = len(states)
                states.append(stacks)
                char_tops: list[Stack] = []
                sets: list[_CharSet] = []
                toks: list[tuple[int, int]] = []
                for st in stacks:
                    if not st:
                        continue
                    t = types[st[-1]]
                    if t in _CHAR_TYPES:
                        char_tops.append(st)
                        positive, ranges, _ = charsets[st[-1]]
                        sets.append((positive, ranges))
                    else:
                        toks.append((t, values[st[-1]]))
                info.append((char_tops, sets, toks))
            return sid

        def advance(sid: int, ks: tuple[int, ...]) -> int:
            key = (sid, ks)
            nsid = local_trans.get(key)
            if nsid is None:
                stacks = states[sid]
                nxt = trans_cache.get((stacks, ks))
                if nxt is None:
                    merged: dict[Stack, None] = {}
                    for k in ks:
                        st = info[sid][0][k]
                        after = charsets[st[-1]][2]
                        for ns in g._advance(st[:-1] if rules.is_end(after) else st[:-1] + (after,)):
                            merged[ns] = None
                    nxt = tuple(merged)
                    if len(trans_cache) > 50_000:
                        trans_cache.clear()
                    trans_cache[(stacks, ks)] = nxt
                nsid = local_trans[key] = intern(nxt)
            return nsid

        def tokens_below(toks: list[tuple[int, int]], lo: np.ndarray | int, hi: np.ndarray | int) -> None:
            # a token element accepts, below these nodes, the tokens with its id (TOKEN) or
            # all others (TOKEN_NOT)
            for t, v in toks:
                if t == TOKEN:
                    r = int(self.rank[v]) if v < self.n_tokens else -1
                    if r >= 0 and bool(np.any((lo <= r) & (r < hi))):
                        token_hits.append(r)
                else:
                    diff = token_not.get(v)
                    if diff is None:
                        diff = token_not[v] = np.zeros(n_live + 1, dtype=np.int64)
                    np.add.at(diff, lo, 1)
                    np.add.at(diff, hi, -1)

        child_lo, child_hi, edge_cp = self.child_lo_l, self.child_hi_l, self.edge_cp_l
        nodes = np.zeros(1, dtype=np.int64)
        node_state[0] = intern(tuple(g.stacks))
        while len(nodes):
            if len(nodes) <= _SMALL_LEVEL:
                # sparse level: node by node
                nxt_nodes: list[int] = []
                nxt_states: list[int] = []
                for node, sid in zip(nodes.tolist(), node_state[nodes].tolist(), strict=True):
                    _, sets, toks = info[sid]
                    if toks:
                        tokens_below(toks, self.inner_l[node], self.end_l[node])
                    if not sets:
                        continue
                    for child in range(child_lo[node], child_hi[node]):
                        cp = edge_cp[child]
                        ks = []
                        for k, (positive, ranges) in enumerate(sets):
                            found = False
                            for lo_c, hi_c in ranges:
                                if lo_c <= cp <= hi_c:
                                    found = True
                                    break
                            if found == positive:
                                ks.append(k)
                        if ks:
                            nxt_nodes.append(child)
                            nxt_states.append(advance(sid, tuple(ks)))
                if not nxt_nodes:
                    break
                nodes = np.array(nxt_nodes, dtype=np.int64)
                node_state[nodes] = nxt_states
                continue
            st_of = node_state[nodes]
            next_nodes: list[np.ndarray] = []
            next_states: list[np.ndarray] = []
            # the level's nodes grouped by state: one sort, then contiguous slices
            by_state = np.argsort(st_of, kind="stable")
            sorted_states = st_of[by_state]
            cuts = (np.flatnonzero(np.diff(sorted_states)) + 1).tolist()
            for a, b in zip([0] + cuts, cuts + [len(nodes)], strict=True):
                sid = int(sorted_states[a])
                mine = nodes[by_state[a:b]]
                _, sets, toks = info[sid]
                if toks:
                    tokens_below(toks, self.inner[mine], self.end[mine])
                if not sets:
                    continue
                counts = self.child_hi[mine] - self.child_lo[mine]
                total = int(counts.sum())
                if not total:
                    continue
                starts = np.repeat(self.child_lo[mine] - (np.cumsum(counts) - counts), counts)
                children = np.arange(total, dtype=np.int64) + starts
                cps = self.edge_cp[children]
                hits = np.zeros((len(sets), total), dtype=bool)
                for k, (positive, ranges) in enumerate(sets):
                    h = hits[k]
                    for lo_c, hi_c in ranges:
                        h |= (cps >= lo_c) & (cps <= hi_c)
                    if not positive:
                        np.logical_not(h, out=h)
                # group the children by which char-topped stacks they match
                if len(sets) == 1:
                    sel = children[hits[0]]
                    if len(sel):
                        next_nodes.append(sel)
                        next_states.append(np.full(len(sel), advance(sid, (0,)), dtype=np.int64))
                    continue
                if len(sets) <= 62:
                    weights = np.left_shift(np.int64(1), np.arange(len(sets), dtype=np.int64))
                    codes = weights @ hits.astype(np.int64)
                    uniq, inverse = np.unique(codes, return_inverse=True)
                    groups = [(tuple(k for k in range(len(sets)) if code >> k & 1), u)
                              for u, code in enumerate(uniq.tolist())]
                else:
                    packed = np.ascontiguousarray(np.packbits(hits, axis=0).T)
                    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
                    uniq, inverse = np.unique(keys, return_inverse=True)
                    groups = []
                    for u in range(len(uniq)):
                        bits = np.unpackbits(np.frombuffer(uniq[u].tobytes(), dtype=np.uint8))
                        groups.append((tuple(np.flatnonzero(bits[:len(sets)]).tolist()), u))
                inverse = inverse.ravel()
                for ks, u in groups:
                    if not ks:
                        continue
                    sel = children[inverse == u]
                    next_nodes.append(sel)
                    next_states.append(np.full(len(sel), advance(sid, ks), dtype=np.int64))
            if not next_nodes:
                break
            nodes = np.concatenate(next_nodes)
            node_state[nodes] = np.concatenate(next_states)
        if token_hits:
            acc[token_hits] = True
        # tokens ending at a reached node: an empty trailing partial sequence is accepted by any
        # stack; a pending one by a char element it could complete
        reached = node_state[self.term_node]
        acc |= (reached >= 0) & (self.term_rem == 0)
        for i in np.flatnonzero((reached >= 0) & (self.term_rem > 0)).tolist():
            partial = (int(self.term_val[i]), int(self.term_rem[i]))
            for st in info[reached[i]][0]:
                if match_partial_char(rules, st[-1], partial):
                    acc[i] = True
                    break
        for v, diff in token_not.items():
            cover = np.cumsum(diff[:-1]) > 0
            r = self.rank[v] if v < self.n_tokens else -1
            if r >= 0:
                cover[r] = False
            acc |= cover
        out = np.zeros(self.n_tokens, dtype=bool)
        out[self.order[acc]] = True
        return out


# levels of the trie with at most this many nodes are walked node by node in Python
_SMALL_LEVEL = 48


def apply_all(g: Grammar, index: TokenIndex) -> np.ndarray:
    """llama_grammar_apply_impl over every token of the vocabulary: (n_tokens,) bool, False
    where the reference sets -inf."""
    if g.awaiting_trigger:
        return np.ones(index.n_tokens, dtype=bool)
    if g.partial_utf8[1] > 0:
        # pieces decode differently after a pending lead byte: the reference's walk
        return np.array(g.apply(range(index.n_tokens)), dtype=bool)
    if not g.stacks and (index.status == _LIVE).any():
        # the reference asserts (GGML_ASSERT(!stacks.empty()) in reject_candidates)
        raise GrammarError("no grammar stacks to match candidates against", reason="internal")
    keep = index.allowed(g)
    keep[index.status == _EOG] = g.is_complete()
    return keep


class VocabPieces:
    """A ``pyggml.vocab.Vocab`` as the grammar reads it: the reference's cached
    ``token_to_piece(token)`` (rendered with special = true), EOG flags, and the tokenizer for
    ``<text>`` token references.  Pieces are rendered once."""

    def __init__(self, vocab: Any) -> None:
        self.vocab = vocab
        self.n_tokens = int(vocab.n_tokens)
        # llama.cpp: src/llama-vocab.cpp load: cache_token_to_piece uses special = true
        self.pieces = [vocab.token_to_piece(t, 0, True) for t in range(self.n_tokens)]
        self.eog_ids = frozenset(t for t in range(self.n_tokens) if vocab.is_eog(t))

    def piece(self, token: int) -> bytes:
        return self.pieces[token]

    def is_eog(self, token: int) -> bool:
        return token in self.eog_ids

    def tokenize(self, text: bytes, add_special: bool = False, parse_special: bool = True) -> list[int]:
        return list(self.vocab.tokenize(text, add_special, parse_special))
