"""SWA masking rules and memory status combination, against the reference."""

from __future__ import annotations

import numpy as np
import pytest

from pyggml.memory import swa
from pyggml.memory.status import MemoryStatus, combine
from pyggml.reference import memory as ref


def test_rules_by_hand():
    assert swa.is_masked(4, swa.SWAType.STANDARD, 1, 5) and not swa.is_masked(4, swa.SWAType.STANDARD, 2, 5)
    assert swa.is_masked(4, swa.SWAType.CHUNKED, 3, 5) and not swa.is_masked(4, swa.SWAType.CHUNKED, 4, 5)
    assert swa.is_masked(4, swa.SWAType.SYMMETRIC, 8, 5) and not swa.is_masked(4, swa.SWAType.SYMMETRIC, 7, 5)
    assert not swa.is_masked(4, swa.SWAType.NONE, 0, 1000)
    with pytest.raises(ZeroDivisionError):
        swa.is_masked(0, swa.SWAType.CHUNKED, 0, 1)


@pytest.mark.parametrize("t", list(swa.SWAType))
@pytest.mark.parametrize("n_swa", [1, 2, 5, 8, 128])
def test_grid_matches_reference(t, n_swa):
    p = np.arange(0, 300, 3)
    ours = swa.is_masked(n_swa, t, p[:, None], p[None, :])
    assert np.array_equal(ours, ref.swa_is_masked(n_swa, int(t), p, p))


def test_status_combine_matches_reference():
    for a in MemoryStatus:
        assert a.is_fail == ref.status_is_fail(a)
        for b in MemoryStatus:
            assert combine(a, b) == ref.status_combine(a, b), (a, b)
    assert combine(MemoryStatus.FAILED_COMPUTE, MemoryStatus.FAILED_PREPARE) == MemoryStatus.FAILED_COMPUTE
    assert combine(MemoryStatus.NO_UPDATE, MemoryStatus.SUCCESS) == MemoryStatus.SUCCESS
