"""C float math as the reference computes it (glibc libm, float32 arithmetic).

glibc's ``expf``/``logf``/``log2f`` are *not* the double function rounded to float: over all
2^32 float inputs, ``(float)exp((double)x)`` differs from glibc ``expf`` on 170,648 of them
(``logf``: 416,909, ``log2f``: 313,550; checked against the glibc 2.36 the reference links).
numpy's own float32 ``exp``/``log`` are SIMD approximations and differ more.  So:

* ``expf`` (every softmax): glibc documents its result before the final rounding to float as
  within 1.69 * 2^-34 (relative) of exp(x) (sysdeps/ieee754/flt-32/e_expf.c).  We compute
  exp in double (error ~2^-52) and round; wherever that double lies within ~2^-32 (relative)
  of a float rounding midpoint, either side could be glibc's answer, and only there we call
  glibc ``expf`` itself (ctypes).  Elsewhere both round to the same float: exact by that
  bound (and re-checked: 0 differences over all 2^32 inputs with the same rule in C), with
  ~0.4% of elements taking the slow call.
* ``logf``/``log2f`` (typical, temp-ext, mirostat): glibc's bound (0.818 ULP) is too loose for
  that trick, so every element is computed by glibc itself (ctypes, ~0.5 us each).  These
  samplers are off in the default chain.

Scalars are called straight from the C library (ctypes), so ``powf``/``logf``/``pow`` match.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

_libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
for _name in ("expf", "logf", "log2f"):
    getattr(_libm, _name).restype = ctypes.c_float
    getattr(_libm, _name).argtypes = [ctypes.c_float]
_libm.powf.restype = ctypes.c_float
_libm.powf.argtypes = [ctypes.c_float, ctypes.c_float]

f32 = np.float32


_EXPF_REL = 2.0**-33  # > glibc expf's documented 1.69 * 2^-34 pre-rounding relative error


_LOW29 = np.uint64((1 << 29) - 1)   # double mantissa bits a float drops
_MID29 = np.int64(1 << 28)           # ... their value at a float rounding midpoint
_NEAR = np.int64(1 << 20)            # 2^20 double ulps ~ 2^-32 relative: > glibc's bound


def expf(x: np.ndarray) -> np.ndarray:
    """glibc ``expf`` of every element of a float32 array (see the module note)."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        y = np.exp(x.astype(np.float64))
        out = y.astype(np.float32)
        # normal float results: the dropped 29 mantissa bits say how far y is from a midpoint
        low = (y.view(np.uint64) & _LOW29).view(np.int64)
        risky = np.abs(low - _MID29) <= _NEAR
        risky &= y >= 2.0**-126
        risky |= (y > 3.0e38) & ~np.isinf(x)   # overflow edge: glibc decides
        sub = np.flatnonzero((y < 2.0**-126) & (y > 0))
        if sub.size:  # subnormal float results: the float grid step is 2^-149
            q = y[sub] * 2.0**149
            frac = q - np.floor(q)
            risky[sub[np.abs(frac - 0.5) <= 2.0**-33 * q + 2.0**-40]] = True
    idx = np.flatnonzero(risky)
    if idx.size:
        c_expf = _libm.expf
        out[idx] = [c_expf(v) for v in x[idx].tolist()]
    return out


def _each(fn, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return np.fromiter((fn(v) for v in x.tolist()), dtype=np.float32, count=x.size)


def logf(x: np.ndarray) -> np.ndarray:
    """glibc ``logf`` per element (exact; one C call each)."""
    return _each(_libm.logf, x)


def log2f(x: np.ndarray) -> np.ndarray:
    """glibc ``log2f`` per element (exact; one C call each)."""
    return _each(_libm.log2f, x)


def c_logf(x: float) -> np.float32:
    return f32(_libm.logf(float(x)))


def c_log2f(x: float) -> np.float32:
    return f32(_libm.log2f(float(x)))


def c_powf(x: float, y: float) -> np.float32:
    return f32(_libm.powf(float(x), float(y)))


def c_int(x: np.float32 | float) -> int:
    """C ``int(x)`` on x86: truncation, and INT_MIN for NaN or out-of-range (cvttss2si)."""
    xf = float(x)
    if math.isnan(xf) or not (-2147483648.0 <= xf < 2147483648.0):
        return -2147483648
    return int(xf)


def seq_sum_f32(x: np.ndarray) -> np.float32:
    """A float accumulator summed in index order (``float s = 0; s += x[i]``)."""
    if x.size == 0:
        return f32(0.0)
    return np.cumsum(x, dtype=np.float32)[-1]
