"""kernels/: the numba kernels against the pygame calls they replace (gfxdraw, smoothscale), and
the fallback when numba cannot load. Whole frames are checked against Gymnasium's in
test_renderer.py, and the resize against the original's scipy step in test_env.py."""
import subprocess
import sys

import numpy as np
import pygame
import pytest
from conftest import REPO
from pygame import gfxdraw

import env as env_module
import kernels
import renderer


@pytest.fixture(scope="module")
def raster():
    assert kernels.load(), "the numba kernels did not load"
    from kernels import raster
    return raster


def random_polygon(rng):
    """3-8 vertices of one of the shapes the renderer meets and some it should survive: on and
    around the screen, far off it (coordinates that wrap as Sint16), near-integer coordinates,
    needles, rotated rectangles and repeated vertices."""
    n = 4 if rng.random() < 0.7 else int(rng.integers(3, 9))
    kind = rng.integers(6)
    if kind == 0:
        p = rng.uniform(-60, 1060, (n, 2))
    elif kind == 1:
        p = rng.uniform(-70000, 70000, (n, 2))
    elif kind == 2:
        p = rng.integers(-20, 1020, (n, 2)) + rng.choice([0, 1e-12, 1e-9, 0.5, 0.999999, -1e-9], (n, 2))
    elif kind == 3:
        p = rng.uniform(0, 1000, 2) + rng.uniform(-30, 30, (n, 2)) * rng.choice([0.0, 0.05, 1.0])
    elif kind == 4:
        c, a, (w, h) = rng.uniform(0, 1000, 2), rng.uniform(0, 2 * np.pi), rng.uniform(1, 200, 2)
        corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
        p = c + corners @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    else:
        p = rng.uniform(0, 1000, (n, 2))
        p[1::2] = p[0]  # repeated vertices (A-B-A-B) and zero-length edges
    return p


@pytest.mark.parametrize("size, clip", [((1000, 800), None), ((97, 61), (5, 3, 80, 50))])
def test_draw_polys_is_gfxdraw_aapolygon_then_filled_polygon(raster, size, clip):
    """After every polygon the whole surface, unused X byte included, equals gfxdraw's."""
    rng = np.random.default_rng(0)
    ours, theirs = pygame.Surface(size), pygame.Surface(size)
    noise = rng.integers(0, 2**32, size[::-1], dtype=np.uint32)
    for s in (ours, theirs):
        renderer.pixel_view(s)[:] = noise
        if clip:
            s.set_clip(clip)
    pix, fmt = renderer.pixel_view(ours), renderer.surface_format(ours)
    x, y, w, h = ours.get_clip()
    rect = np.array([x, y, w, h], np.int64)
    for i in range(300):
        p = random_polygon(rng)
        aa, fill = [(True, True), (True, False), (False, True)][i % 3]
        rgb = tuple(int(v) for v in rng.integers(0, 256, 3))
        if aa:
            gfxdraw.aapolygon(theirs, p.tolist(), rgb)
        if fill:
            gfxdraw.filled_polygon(theirs, p.tolist(), rgb)
        raster.draw_polys(pix, p[:, 0].copy(), p[:, 1].copy(), np.array([0, len(p)], np.int64),
                          np.array([ours.map_rgb(rgb) & 0xFFFFFFFF], np.uint32), np.array([aa]), np.array([fill]),
                          rect, 0, size[1], fmt)
        assert np.array_equal(pix, renderer.pixel_view(theirs)), f"polygon {i}: {p.tolist()}"


def test_draw_polys_writes_only_the_rows_asked_for(raster):
    rng = np.random.default_rng(1)
    pix = np.zeros((800, 1000), np.uint32)
    full = pix.copy()
    fmt = renderer.surface_format(pygame.Surface((1, 1)))
    polys = [random_polygon(rng) for _ in range(50)]
    xs, ys = np.concatenate([p[:, 0] for p in polys]), np.concatenate([p[:, 1] for p in polys])
    starts = np.cumsum([0] + [len(p) for p in polys]).astype(np.int64)
    colors = rng.integers(1, 2**24, 50).astype(np.uint32)
    ones, clip = np.ones(50, np.bool_), np.array([0, 0, 1000, 800], np.int64)
    raster.draw_polys(full, xs, ys, starts, colors, ones, ones, clip, 0, 800, fmt)
    raster.draw_polys(pix, xs, ys, starts, colors, ones, ones, clip, 100, 800, fmt)
    assert np.count_nonzero(full[:100]) > 0 and not pix[:100].any()
    assert np.array_equal(pix[100:], full[100:])


@pytest.mark.parametrize("shape", [(800, 96), (700, 96), (300, 5), (97, 13)])
def test_shrink_y_rgb_is_smoothscales_vertical_pass(raster, shape):
    """smoothscale to the same width runs only its vertical pass: its R, G, B bytes, from rows
    split at `cut` between the two sources, the first read flipped or not."""
    rng = np.random.default_rng(shape[0])
    for out_h, cut, flip in ((96, shape[0] // 2, True), (1, 1, False), (shape[0] - 1, shape[0] - 3, True)):
        surface = pygame.Surface(shape[::-1])
        src = renderer.pixel_view(surface)
        src[:] = rng.integers(0, 2**32, shape, dtype=np.uint32)
        top = np.ascontiguousarray(src[:cut][::-1] if flip else src[:cut])
        ours = np.empty((out_h, shape[1], 3), np.uint8)
        raster.shrink_y_rgb(top, np.ascontiguousarray(src[cut:]), flip, ours, renderer.surface_format(surface)[4:7].copy())
        del src
        expected = pygame.surfarray.pixels3d(pygame.transform.smoothscale(surface, (shape[1], out_h))).transpose(1, 0, 2)
        assert np.array_equal(ours, expected)


def test_visible_quads_keeps_the_numpy_culls_quads_and_coordinates(raster):
    """Track.visible_arrays with kernels.cull against its numpy pass, for camera poses from the
    start zoom to far zoomed in, on and off the track, at scale 1 and approx's 0.25."""
    from kernels import cull  # loaded with raster (the fixture)
    e = env_module.make_env(seed=3, compiled=False)
    e.reset()
    car = e.unwrapped
    rng = np.random.default_rng(0)
    plain, compiled = renderer.Track(), renderer.Track(cull)
    kept = 0
    for _ in range(200):
        angle = rng.uniform(-7, 7)
        zoom = rng.choice([0.1 * 6, 2.7 * 6, rng.uniform(0.5, 30)])
        trans = tuple(rng.uniform(-3000, 3000, 2))
        for top, scale in ((100, 1.0), (100, 0.25), (0, 1.0)):
            expected = plain.visible_arrays(car, angle, zoom, trans, top, scale)
            ours = compiled.visible_arrays(car, angle, zoom, trans, top, scale)
            for a, b in zip(expected, ours):
                assert np.array_equal(a, b)
            kept += expected[2] + len(expected[3])
    assert kept > 1000  # the poses do keep quads


def test_without_numba_the_env_runs_on_pygame_with_one_line():
    code = ("import sys; sys.modules['numba'] = None\n"
            "import env\n"
            "e = env.make_env(seed=0)\n"
            "print(type(e.renderer).__name__, e.compiled, e.reset().shape)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Fast", "False", "(64,", "64,", "3)"]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kernels: numba kernels unavailable") and "numba" in lines[0]


def test_compiled_off_never_imports_numba():
    code = ("import sys, env\n"
            "e = env.make_env(seed=0, compiled=False); e.reset()\n"
            "print('numba' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["False"], out.stderr
