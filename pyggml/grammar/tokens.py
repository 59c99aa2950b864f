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

import numpy as np

from ..errors import GrammarError
from .parser import CHAR, CHAR_ANY, CHAR_NOT, TOKEN
from .runtime import Grammar, GrammarVocab, Stack, decode_utf8, match_partial_char

_DEAD, _EOG, _LIVE = 0, 1, 2
_CHAR_TYPES = (CHAR, CHAR_NOT, CHAR_ANY)


class _Node:
    __slots__ = ("children", "ends", "inner", "end")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.ends: list[tuple[int, tuple[int, int]]] = []  # (token, partial) ending here
        self.inner = self.end = 0  # dfs ranges: [inner, end) = tokens strictly below


class TokenIndex:
    """Per-vocabulary structures, built once: each token's status (dead: empty or NUL-led
    piece; EOG; live) and the trie of live tokens' code points (decoded from a clean UTF-8
    state) laid out breadth first in flat arrays, so that ``allowed`` works a whole trie level
    at a time with numpy.  Live tokens are numbered depth first ("dfs index"), so the tokens
    below a node are one contiguous range."""

    def __init__(self, vocab: GrammarVocab, n_tokens: int) -> None:
        self.n_tokens = n_tokens
        self.status = np.zeros(n_tokens, dtype=np.int8)
        root = _Node()
        for t in range(n_tokens):
            piece = vocab.piece(t)
            if vocab.is_eog(t):
                self.status[t] = _EOG
            elif not piece or piece[0] == 0:
                self.status[t] = _DEAD
            else:
                self.status[t] = _LIVE
                cps, partial = decode_utf8(piece, (0, 0))
                node = root
                for cp in cps[:-1]:
                    nxt = node.children.get(cp)
                    if nxt is None:
                        nxt = node.children[cp] = _Node()
                    node = nxt
                node.ends.append((t, partial))
        # depth-first numbering of tokens: a node's own tokens, then its subtrees in cp order
        order: list[int] = []
        ends_at: list[_Node] = []
        todo: list[tuple[_Node, bool]] = [(root, False)]
        while todo:
            node, done = todo.pop()
            if done:
                node.end = len(order)
                continue
            for t, _ in node.ends:
                order.append(t)
                ends_at.append(node)
            node.inner = len(order)
            todo.append((node, True))
            for k in sorted(node.children, reverse=True):
                todo.append((node.children[k], False))
        # breadth-first node arrays: children of a node are consecutive ids, one level after another
        bfs: list[_Node] = [root]
        cps_in: list[int] = [0]
        child_lo: list[int] = []
        child_hi: list[int] = []
        i = 0
        while i < len(bfs):
            node = bfs[i]
            child_lo.append(len(bfs))
            for k in sorted(node.children):
                bfs.append(node.children[k])
                cps_in.append(k)
            child_hi.append(len(bfs))
            i += 1
        node_id = {id(n): j for j, n in enumerate(bfs)}
        self.child_lo = np.array(child_lo, dtype=np.int64)
        self.child_hi = np.array(child_hi, dtype=np.int64)
        self.edge_cp = np.array(cps_in, dtype=np.int64)          # (n_nodes,) code point into the node
        self.inner = np.array([n.inner for n in bfs], dtype=np.int64)
        self.end = np.array([n.end for n in bfs], dtype=np.int64)
        self.order = np.array(order, dtype=np.int64)              # dfs index -> token
        self.rank = np.full(n_tokens, -1, dtype=np.int64)         # token -> dfs index (-1: not live)
        self.rank[self.order] = np.arange(len(order))
        partial_of = {t: p for n in bfs for t, p in n.ends}
        self.term_node = np.array([node_id[id(n)] for n in ends_at], dtype=np.int64)  # per dfs index
        self.term_rem = np.array([partial_of[t][1] for t in order], dtype=np.int64)
        self.term_val = np.array([partial_of[t][0] for t in order], dtype=np.int64)

    def allowed(self, g: Grammar) -> np.ndarray:
        """(n_tokens,) bool: the tokens llama_grammar_apply_impl leaves finite, for a grammar
        with no partial UTF-8 pending."""
        rules = g.rules
        types, values, charsets = rules.types, rules.values, rules.charsets
        n_live = len(self.order)
        acc = np.zeros(n_live, dtype=bool)
        node_state = np.full(len(self.edge_cp), -1, dtype=np.int64)
        states: list[tuple[Stack, ...]] = []
        state_id: dict[tuple[Stack, ...], int] = {}
        token_not: dict[int, np.ndarray] = {}   # TOKEN_NOT value -> range-cover difference array

        def intern(stacks: tuple[Stack, ...]) -> int:
            sid = state_id.get(stacks)
            if sid is None:
                sid = state_id[stacks] = len(states)
                states.append(stacks)
            return sid

        nodes = np.zeros(1, dtype=np.int64)
        node_state[0] = intern(tuple(g.stacks))
        while len(nodes):
            st_of = node_state[nodes]
            next_nodes: list[np.ndarray] = []
            next_states: list[np.ndarray] = []
            for sid in np.unique(st_of).tolist():
                mine = nodes[st_of == sid]
                char_tops: list[Stack] = []
                for s in states[sid]:
                    if not s:
                        continue
                    top = s[-1]
                    t = types[top]
                    if t in (CHAR, CHAR_NOT, CHAR_ANY):
                        char_tops.append(s)
                        continue
                    # a token element accepts, below this node, the tokens with its id (TOKEN)
                    # or all others (TOKEN_NOT)
                    lo, hi = self.inner[mine], self.end[mine]
                    v = values[top]
                    if t == TOKEN:
                        r = self.rank[v] if v < self.n_tokens else -1
                        if r >= 0 and bool(np.any((lo <= r) & (r < hi))):
                            acc[r] = True
                    else:
                        diff = token_not.get(v)
                        if diff is None:
                            diff = token_not[v] = np.zeros(n_live + 1, dtype=np.int64)
                        np.add.at(diff, lo, 1)
                        np.add.at(diff, hi, -1)
                if not char_tops:
                    continue
                counts = self.child_hi[mine] - self.child_lo[mine]
                total = int(counts.sum())
                if not total:
                    continue
                starts = np.repeat(self.child_lo[mine] - (np.cumsum(counts) - counts), counts)
                children = np.arange(total, dtype=np.int64) + starts
                cps = self.edge_cp[children]
                hits = np.zeros((len(char_tops), total), dtype=bool)
                for k, s in enumerate(char_tops):
                    positive, ranges, _ = charsets[s[-1]]
                    h = hits[k]
                    for lo_c, hi_c in ranges:
                        h |= (cps >= lo_c) & (cps <= hi_c)
                    if not positive:
                        np.logical_not(h, out=h)
                # group the children by which char-topped stacks they match
                groups: list[tuple[list[int], np.ndarray]] = []
                if len(char_tops) == 1:
                    groups.append(([0], children[hits[0]]))
                elif len(char_tops) <= 62:
                    weights = np.left_shift(np.int64(1), np.arange(len(char_tops), dtype=np.int64))
                    codes = weights @ hits.astype(np.int64)
                    uniq, inverse = np.unique(codes, return_inverse=True)
                    for u, code in enumerate(uniq.tolist()):
                        ks = [k for k in range(len(char_tops)) if code >> k & 1]
                        groups.append((ks, children[inverse.ravel() == u]))
                else:
                    packed = np.ascontiguousarray(np.packbits(hits, axis=0).T)
                    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
                    uniq, inverse = np.unique(keys, return_inverse=True)
                    for u in range(len(uniq)):
                        bits = np.unpackbits(np.frombuffer(uniq[u].tobytes(), dtype=np.uint8))
                        groups.append((np.flatnonzero(bits[:len(char_tops)]).tolist(),
                                       children[inverse.ravel() == u]))
                for ks, sel in groups:
                    if not ks or not len(sel):
                        continue
                    merged: dict[Stack, None] = {}
                    for k in ks:
                        s = char_tops[k]
                        after = charsets[s[-1]][2]
                        for ns in g._advance(s[:-1] if rules.is_end(after) else s[:-1] + (after,)):
                            merged[ns] = None
                    next_nodes.append(sel)
                    next_states.append(np.full(len(sel), intern(tuple(merged)), dtype=np.int64))
            if not next_nodes:
                break
            nodes = np.concatenate(next_nodes)
            node_state[nodes] = np.concatenate(next_states)
        # tokens ending at a reached node: an empty trailing partial sequence is accepted by any
        # stack; a pending one by a char element it could complete
        reached = node_state[self.term_node]
        acc |= (reached >= 0) & (self.term_rem == 0)
        for i in np.flatnonzero((reached >= 0) & (self.term_rem > 0)).tolist():
            partial = (int(self.term_val[i]), int(self.term_rem[i]))
            for s in states[reached[i]]:
                if s and types[s[-1]] in _CHAR_TYPES and match_partial_char(rules, s[-1], partial):
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
