"""numba version of the resize in env._process_frame: Pillow 13's bilinear 96x84 -> 64x64 on
8-bit RGB, fused with the original's v - 1 mod 256. The same bytes as Pillow, in one pass.

Pillow (libImaging/Resample.c) resizes horizontally, then vertically, each pass a weighted sum
of whole bytes with weights in fixed point (PRECISION_BITS fractional bits), rounded by adding
half and clipped to 0..255. The weights below are Pillow's `precompute_coeffs` for the bilinear
filter followed by `normalize_coeffs_8bpc`, in the same double arithmetic.
"""
import math

import numpy as np
from numba import njit

PRECISION_BITS = 32 - 8 - 2  # Resample.c, for 8 bits per channel
IN_H, IN_W, OUT = 84, 96, 64  # the crop of the 96x96 frame and the observation's side


def coefficients(in_size, out_size):
    """Pillow's bilinear resampling weights: (first input index, count) per output index, and
    the int32 weights (out_size, ksize) in fixed point."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale  # the bilinear filter's support is 1
    ksize = int(math.ceil(support)) * 2 + 1
    bounds = np.zeros((out_size, 2), np.int64)
    weights = np.zeros((out_size, ksize), np.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)  # C's (int) truncates as int() does
        xmax = min(int(center + support + 0.5), in_size) - xmin
        ss = 1.0 / filterscale
        w = [max(1.0 - abs((x + xmin - center + 0.5) * ss), 0.0) for x in range(xmax)]
        total = 0.0
        for v in w:  # summed in order, as the C loop
            total += v
        for x, v in enumerate(w):
            v = v / total if total != 0.0 else v
            weights[xx, x] = int(v * (1 << PRECISION_BITS) + (0.5 if v >= 0 else -0.5))
        bounds[xx] = xmin, xmax
    return bounds, weights


H_BOUNDS, H_WEIGHTS = coefficients(IN_W, OUT)
V_BOUNDS, V_WEIGHTS = coefficients(IN_H, OUT)


@njit(cache=True, inline="always")
def _clip8(v):
    if v >= (1 << PRECISION_BITS << 8):
        return 255
    if v <= 0:
        return 0
    return v >> PRECISION_BITS


@njit(cache=True)
def _resize_wrapped(crop, table, hb, hw, vb, vw, out):
    """out = (bilinear resize of table[crop]) - 1 mod 256. Each crop row is looked up once; the
    vertical pass runs along whole rows (64 pixels x 3 channels) so that it vectorises. Sums
    stay below 2**31 (weights sum to 2**22, bytes <= 255), as in Pillow's int32."""
    half = 1 << (PRECISION_BITS - 1)
    h, w = crop.shape[0], crop.shape[1]
    ow = hb.shape[0]
    row = np.empty(w * 3, np.int64)
    wide = np.empty((h, ow * 3), np.int64)
    for y in range(h):
        for x in range(w):
            for c in range(3):
                row[3 * x + c] = table[crop[y, x, c]]
        for xx in range(ow):
            b, n = 3 * hb[xx, 0], hb[xx, 1]
            s0 = s1 = s2 = half
            for k in range(n):
                wk = hw[xx, k]
                s0 += row[b + 3 * k] * wk
                s1 += row[b + 3 * k + 1] * wk
                s2 += row[b + 3 * k + 2] * wk
            wide[y, 3 * xx] = _clip8(s0)
            wide[y, 3 * xx + 1] = _clip8(s1)
            wide[y, 3 * xx + 2] = _clip8(s2)
    flat = out.reshape(vb.shape[0], ow * 3)
    acc = np.empty(ow * 3, np.int64)
    for yy in range(vb.shape[0]):
        y0, n = vb[yy, 0], vb[yy, 1]
        acc[:] = half
        for k in range(n):
            wk = vw[yy, k]
            src = wide[y0 + k]
            for i in range(ow * 3):
                acc[i] += src[i] * wk
        for i in range(ow * 3):
            flat[yy, i] = (_clip8(acc[i]) + 255) % 256
    return out


def resize_wrapped(crop, table):
    """(84, 96, 3) uint8 crop and the 256-entry uint8 stretch table -> the (64, 64, 3) observation."""
    out = np.empty((OUT, OUT, 3), np.uint8)
    return _resize_wrapped(crop, table, H_BOUNDS, H_WEIGHTS, V_BOUNDS, V_WEIGHTS, out)
