"""pyggml's vector expf/logf/log2f against glibc's (evaluated in the probe)."""

from __future__ import annotations

import numpy as np

from pyggml.reference import sampling as R
from pyggml.sampling import _fmath as fm


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32)


def test_expf_bit_exact_on_softmax_range_and_known_hard_inputs():
    rng = np.random.default_rng(3)
    x = np.concatenate([
        -rng.exponential(10, 200_000), rng.uniform(-104.5, 89, 100_000),
        rng.normal(0, 1e-3, 50_000),
        # inputs where (float)exp((double)x) != glibc expf
        [float.fromhex(h) for h in ("0x1.fefe02p-16", "0x1.5b3c52p-14", "0x1.cd3982p-14",
                                    "0x1.dfb8fap-14", "0x1.625856p-13", "0x1.068796p-12")],
        [0.0, -0.0, -np.inf, np.inf, -103.97, -103.28, 88.72, 88.73],
    ]).astype(np.float32)
    assert np.array_equal(_bits(fm.expf(x)), _bits(R.libm_f32("expf", x)))


def test_logf_log2f_bit_exact():
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.random(20_000), np.exp(rng.uniform(-100, 80, 20_000)),
                        [float.fromhex("0x1.2238p-136"), 1.0, 0.0, 1e-45]]).astype(np.float32)
    assert np.array_equal(_bits(fm.logf(x)), _bits(R.libm_f32("logf", x)))
    assert np.array_equal(_bits(fm.log2f(x)), _bits(R.libm_f32("log2f", x)))


def test_numpy_float64_route_alone_is_not_glibc():
    # the reason expf needs the midpoint guard: the plain double route differs here
    x = np.array([float.fromhex("0x1.fefe02p-16")], np.float32)
    plain = np.exp(x.astype(np.float64)).astype(np.float32)
    assert _bits(plain)[0] != _bits(R.libm_f32("expf", x))[0]
    assert _bits(fm.expf(x))[0] == _bits(R.libm_f32("expf", x))[0]
