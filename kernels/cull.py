"""numba version of renderer.Track.visible_arrays' vertex pass: every track quad transformed to
the screen (renderer.rotation's c and s, the zoom and the translation, in the same double
operations as renderer.transform) and culled, in one loop instead of ~25 numpy passes over all
~1,000 quads. The same quads and coordinates as the numpy version (tests/test_kernels.py)."""
import numpy as np
from numba import njit


@njit(cache=True)
def visible_quads(x, y, c, s, zoom, tx, ty, keep, touch, scale, out_x, out_y, out_idx):
    """x, y: (4, quads) world vertices. A quad is kept when one of its screen vertices lies in
    keep = (lo, x_hi, y_hi): [lo, x_hi] x [lo, y_hi] (CarRacing's own test), and its vertices'
    extent reaches touch = (left, right, top, bottom): max x >= left, min x <= right, max y >= top,
    min y <= bottom. Writes the kept quads' screen vertices (times `scale` unless it is 1) to
    out_x, out_y (quads, 4) and their indices to out_idx, in order; returns how many."""
    lo, x_hi, y_hi = keep
    left, right, top, bottom = touch
    sx = np.empty(4)
    sy = np.empty(4)
    k = 0
    for q in range(x.shape[1]):
        inside = False
        for v in range(4):
            px = (c * x[v, q] - s * y[v, q]) * zoom + tx
            py = (s * x[v, q] + c * y[v, q]) * zoom + ty
            sx[v] = px
            sy[v] = py
            if lo <= px and px <= x_hi and lo <= py and py <= y_hi:
                inside = True
        if inside and sx.max() >= left and sx.min() <= right and sy.max() >= top and sy.min() <= bottom:
            for v in range(4):
                out_x[k, v] = sx[v] * scale if scale != 1.0 else sx[v]
                out_y[k, v] = sy[v] * scale if scale != 1.0 else sy[v]
            out_idx[k] = q
            k += 1
    return k
