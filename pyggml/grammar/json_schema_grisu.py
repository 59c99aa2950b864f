"""Shortest-ish float digits exactly as nlohmann::json prints them (Grisu2, Loitsch 2010).

llama.cpp: vendor/nlohmann/json.hpp dtoa_impl (compute_boundaries, grisu2, grisu2_digit_gen,
grisu2_round).  Grisu2 is not always shortest: for some doubles it emits 17 digits where
Python's repr needs 16 (``5.198484963170714e+16`` prints as ``5.1984849631707136e+16``), and the
converter's const/enum literals carry those digits, so they are reproduced here with 64-bit
integer arithmetic.  The cached powers of ten (10^k for k = -300, -292, ..., 324 as normalized
64-bit significands, rounded to nearest) are computed rather than tabulated.
"""

from __future__ import annotations

import functools
import struct

_M64 = (1 << 64) - 1
_ALPHA = -60


def _normalized_pow10(k: int) -> tuple[int, int]:
    """(f, e) with f * 2^e ~= 10^k, 2^63 <= f < 2^64, f rounded to nearest (ties up)."""
    if k >= 0:
        n = 10**k
        shift = n.bit_length() - 64
        if shift <= 0:
            return n << -shift, shift
        f = (n + (1 << (shift - 1))) >> shift
        e = shift
    else:
        d = 10**-k
        # f = round(2^s / d) with s such that f has 64 bits
        s = 63 + d.bit_length()
        f = ((1 << s) + d // 2) // d
        while f.bit_length() < 64:
            s += 1
            f = ((1 << s) + d // 2) // d
        e = -s
    if f.bit_length() > 64:  # rounding carried into a 65th bit
        f >>= 1
        e += 1
    return f, e


@functools.cache
def _cached_power(index: int) -> tuple[int, int, int]:
    k = -300 + 8 * index
    f, e = _normalized_pow10(k)
    return f, e, k


def _cached_power_for_binary_exponent(e: int) -> tuple[int, int, int]:
    f = _ALPHA - e - 1
    # C integer division truncates toward zero
    q = f * 78913
    k = (abs(q) >> 18) * (1 if q >= 0 else -1) + (1 if f > 0 else 0)
    index = (300 + k + 7) // 8
    return _cached_power(index)


def _mul(xf: int, xe: int, yf: int, ye: int) -> tuple[int, int]:
    # upper 64 bits of the 128-bit product, rounded (ties up) the way diyfp::mul does it
    u_lo, u_hi = xf & 0xFFFFFFFF, xf >> 32
    v_lo, v_hi = yf & 0xFFFFFFFF, yf >> 32
    p0, p1, p2, p3 = u_lo * v_lo, u_lo * v_hi, u_hi * v_lo, u_hi * v_hi
    q = (p0 >> 32) + (p1 & 0xFFFFFFFF) + (p2 & 0xFFFFFFFF) + (1 << 31)
    h = (p3 + (p2 >> 32) + (p1 >> 32) + (q >> 32)) & _M64
    return h, xe + ye + 64


def _normalize(f: int, e: int) -> tuple[int, int]:
    shift = 64 - f.bit_length()
    return f << shift, e - shift


def _boundaries(value: float) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    bits = struct.unpack("<Q", struct.pack("<d", value))[0]
    big_e = bits >> 52
    frac = bits & ((1 << 52) - 1)
    if big_e == 0:
        vf, ve = frac, 1 - 1075
    else:
        vf, ve = frac + (1 << 52), big_e - 1075
    lower_closer = frac == 0 and big_e > 1
    mp = (2 * vf + 1, ve - 1)
    mm = (4 * vf - 1, ve - 2) if lower_closer else (2 * vf - 1, ve - 1)
    wp = _normalize(*mp)
    wm = (mm[0] << (mm[1] - wp[1]), wp[1])
    return wm, _normalize(vf, ve), wp


def _round(digits: list[int], dist: int, delta: int, rest: int, ten_k: int) -> None:
    while (
        rest < dist and delta - rest >= ten_k and (rest + ten_k < dist or dist - rest > rest + ten_k - dist)
    ):
        digits[-1] -= 1
        rest += ten_k


def grisu2(value: float) -> tuple[str, int]:
    """(digits, decimal_exponent) with value = digits * 10^decimal_exponent; value finite > 0."""
    m_minus, v, m_plus = _boundaries(value)
    cf, ce, ck = _cached_power_for_binary_exponent(m_plus[1])
    w = _mul(v[0], v[1], cf, ce)
    w_minus = _mul(m_minus[0], m_minus[1], cf, ce)
    w_plus = _mul(m_plus[0], m_plus[1], cf, ce)
    mm_f = w_minus[0] + 1
    mp_f, e = w_plus[0] - 1, w_plus[1]
    dec_exp = -ck

    delta = mp_f - mm_f
    dist = mp_f - w[0]
    one_e = -e
    one_f = 1 << one_e
    p1 = mp_f >> one_e
    p2 = mp_f & (one_f - 1)
    digits: list[int] = []
    pow10 = 10 ** (len(str(p1)) - 1)
    n = len(str(p1))
    while n > 0:
        d, p1 = divmod(p1, pow10)
        digits.append(d)
        n -= 1
        rest = (p1 << one_e) + p2
        if rest <= delta:
            dec_exp += n
            _round(digits, dist, delta, rest, pow10 << one_e)
            return "".join(map(str, digits)), dec_exp
        pow10 //= 10
    m = 0
    while True:
        p2 *= 10
        d = p2 >> one_e
        p2 &= one_f - 1
        digits.append(d)
        m += 1
        delta *= 10
        dist *= 10
        if p2 <= delta:
            break
    dec_exp -= m
    _round(digits, dist, delta, p2, one_f)
    return "".join(map(str, digits)), dec_exp
