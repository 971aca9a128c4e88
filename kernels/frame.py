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
    """out = (bilinear resize of table[crop]) - 1 mod 256."""
    half = 1 << (PRECISION_BITS - 1)
    wide = np.empty((crop.shape[0], hb.shape[0], 3), np.int64)
    for y in range(crop.shape[0]):
        for xx in range(hb.shape[0]):
            x0, n = hb[xx, 0], hb[xx, 1]
            for c in range(3):
                s = half
                for k in range(n):
                    s += np.int64(table[crop[y, x0 + k, c]]) * hw[xx, k]
                wide[y, xx, c] = _clip8(s)
    for yy in range(vb.shape[0]):
        y0, n = vb[yy, 0], vb[yy, 1]
        for xx in range(hb.shape[0]):
            for c in range(3):
                s = half
                for k in range(n):
                    s += wide[y0 + k, xx, c] * vw[yy, k]
                out[yy, xx, c] = (_clip8(s) + 255) % 256
    return out


def resize_wrapped(crop, table):
    """(84, 96, 3) uint8 crop and the 256-entry uint8 stretch table -> the (64, 64, 3) observation."""
    out = np.empty((OUT, OUT, 3), np.uint8)
    return _resize_wrapped(crop, table, H_BOUNDS, H_WEIGHTS, V_BOUNDS, V_WEIGHTS, out)
