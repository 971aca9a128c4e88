"""Compiled (numba) kernels: the exact renderer's polygons and vertical shrink (raster.py), its
quads' transform and culling (cull.py), and the observation's resize (frame.py). They give the
same bytes as the pygame, numpy and Pillow code they replace, in less CPU time (README, Speed).

numba compiles on first use and keeps the machine code in its on-disk cache (`__pycache__`
here): the first compile takes ~20-60 s, later processes load it in ~1 s, plus ~1.7 s to import
numba. `make install` compiles once (`python -m kernels`), so that MPI workers started together
only load the cache. Where numba cannot load or compile, `load()` says so in one line and the
callers keep pygame's and Pillow's code (same frames, slower).
"""
import sys

import numpy as np

_state = {}  # "ok": whether this process has the kernels (decided once)


def load():
    """Whether the kernels are usable in this process; imports and compiles (or loads numba's
    cache) on the first call, and prints one line to stderr if they are not."""
    if "ok" not in _state:
        try:
            _warm_up()
            _state["ok"] = True
        except Exception as e:  # an ImportError, or numba's errors when it compiles
            print(f"kernels: numba kernels unavailable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                  f"using pygame's and Pillow's code instead (same frames, slower)", file=sys.stderr)
            _state["ok"] = False
    return _state["ok"]


def _warm_up():
    """Call each kernel once with the argument types the callers pass (one compiled version each)."""
    from kernels import cull, frame, raster
    pix = np.zeros((800, 1000), np.uint32)
    fmt = np.array([0xFF0000, 0xFF00, 0xFF, 0, 16, 8, 0, 0], np.int64)
    xs = np.array([0.0, 10.5, 10.5, 0.0])
    ys = np.array([0.0, 0.0, 10.5, 10.5])
    flags = np.ones(1, np.bool_)
    raster.draw_polys(pix, xs, ys, np.array([0, 4], np.int64), np.array([1], np.uint32), flags, flags,
                      np.array([0, 0, 1000, 800], np.int64), 0, 800, fmt)
    rows = np.zeros((800, 96), np.uint32)
    raster.shrink_y_rgb(rows[:700], rows[700:], True, np.empty((96, 96, 3), np.uint8), fmt[4:7].copy())
    quads = np.zeros((4, 2))
    cull.visible_quads(quads, quads, 1.0, 0.0, 2.7, 500.0, 200.0, (-1.0, 2.0, 2.0), (-2.0, 1002.0, 97.0, 802.0), 1.0,
                       np.empty((2, 4)), np.empty((2, 4)), np.empty(2, np.int64))
    frame.resize_wrapped(np.zeros((96, 96, 3), np.uint8)[:84], np.arange(256, dtype=np.uint8))
