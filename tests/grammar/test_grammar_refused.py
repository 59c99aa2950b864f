"""Grammar parity cannot hide a refusal or a cap: grammars and steps pyggml refuses are cases
compared with the reference's isolated outcome, and a session's stack cap is decided by each
side's own count."""

from __future__ import annotations

import random

import pytest

from pyggml.parity import grammar as pg
from pyggml.reference import grammar as ref


@pytest.mark.parametrize("name", sorted(pg.HOSTILE_REFUSED))
def test_refused_grammars_are_counted_cases(name):
    text = pg.HOSTILE_REFUSED[name]
    cases = list(pg._grammar_cases(random.Random(0), f"hostile/{name}", text, ["a", "aa", "b"], 1))
    refused = [c for c in cases if c.name.startswith("refused.")]
    assert refused, [c.name for c in cases]
    for c in refused:
        assert c.ours == pg.REFUSED and c.reference == pg.REFUSED, (c.name, c.reference)
    if name == "hidden-left-recursion-after-a":
        # the grammar is created; the step accepting "a" is the refused one
        assert any(c.name.startswith("refused.accept.hostile/") for c in refused)
        assert any(c.name.startswith("accept.hostile/") for c in cases)


def test_reference_that_accepts_is_a_mismatch():
    # a grammar and a step the reference completes cannot pass as "refused"
    assert pg.reference_ending('root ::= "a"', []) != pg.REFUSED
    assert pg.reference_ending('root ::= "a"', [(0, 0, b"a")]) != pg.REFUSED
    # an earlier step failing is not the refusal pyggml made at the last one
    assert pg.reference_ending('root ::= "a"', [(0, 0, b"b"), (0, 0, b"a")]) != pg.REFUSED
    # the last step failing is a refusal
    assert pg.reference_ending('root ::= "a"', [(0, 0, b"b")]) == pg.REFUSED


def test_wall_clock_timeout_is_inconclusive_not_a_hang(monkeypatch):
    walls = []

    def starved(func, *args, timeout, mem_mb, cpu_s):
        walls.append(timeout)
        return {"abnormal": "timeout"}

    monkeypatch.setattr(ref, "isolated_call", starved)
    out = pg.reference_ending('root ::= "a"{5,0}', [])
    assert out != pg.REFUSED and "inconclusive" in out["outcome"]
    assert walls == list(pg.REFUSED_WALL_S)  # rerun with a longer wall clock first


# stacks after each "a": 5, 10, 20, 37, ..., 322, 532 (the 9th step passes the cap of 512)
AMBIGUOUS = 'root ::= ("a" | "a" root "b"?)+'


def test_cap_decided_by_both_sides():
    steps = [(0, 0, b"a")] * 40
    ours = pg.ours_session(AMBIGUOUS, "root", steps, pg.SESSION_MAX_STACKS)
    theirs = ref.session(AMBIGUOUS, "root", steps, pg.SESSION_MAX_STACKS)
    assert ours.get("capped") == 8 and ours == theirs
    k = ours["capped"]
    # the capped step itself left more stacks than the cap on the reference's count
    full = ref.session(AMBIGUOUS, "root", steps[:k + 1])
    assert ref.n_stacks(full["steps"][k]["stacks"]) > pg.SESSION_MAX_STACKS
    assert ref.n_stacks(full["steps"][k - 1]["stacks"]) <= pg.SESSION_MAX_STACKS
    # a side that does not cap there is a mismatch
    assert ours != ref.session(AMBIGUOUS, "root", steps[:k + 1], 10**6)
