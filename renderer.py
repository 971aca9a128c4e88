"""Renderers of CarRacing-v3's 96x96 state pixels (the observation), for env.py.

Gymnasium draws every observation in Python: ~800 polygons, each transformed one vertex at a
time through `pygame.math.Vector2`, on a freshly allocated 1000x800 surface, with a font
created per step: nearly all of a step's CPU time. The renderers here read the same env
state (car, road_poly, colours, reward, t) and leave physics, rewards and the `human` /
`rgb_array` modes to Gymnasium:

- "gymnasium": Gymnasium's own `_render("state_pixels")`.
- "fast": pixel-identical to it (verified on pygame-ce 2.5.8 and Gymnasium 1.4.0, which
  `make` checks), several times cheaper (README, Speed). It makes the same pygame draw calls with the same
  float coordinates, but transforms and culls all vertices in one numpy pass, caches what
  does not change within a track, and skips work that cannot reach the 96x96 output.
- "approx": draws the same scene on a canvas `scale` times the size and shrinks that;
  cheaper still, differs from Gymnasium along polygon edges (README, Speed; bench/render.py).

Each comes in two versions that give the same bytes: with pygame's drawing (Fast, Approx) and
with the polygons and the vertical shrink in compiled kernels (FastCompiled, ApproxCompiled;
kernels/raster.py), used whenever numba loads.

Use: `r = make(name, approx_scale)`, then `r.state_pixels(env)` -> (96, 96, 3) uint8.
"""
import math

import gymnasium
import numpy as np
import pygame
from gymnasium.envs.box2d import car_dynamics as cd
from gymnasium.envs.box2d import car_racing as cr
from pygame import gfxdraw

import kernels
from plumbing.cli import UserError

RENDERERS = ("fast", "gymnasium", "approx")
VERIFIED = {"gymnasium": "1.4.0", "pygame-ce": "2.5.8"}  # versions "fast" was verified exact on

W, H = cr.WINDOW_W, cr.WINDOW_H
HUD_TOP = H - 5 * (H / 40.0)  # the indicator box covers rows 700-799 of the (flipped) screen
SENTINEL = (1, 2, 3)  # a colour no indicator uses; see Fast._hud


def make(name, approx_scale, compiled=True):
    """The renderer called `name` ("fast", "gymnasium" or "approx" at canvas scale `approx_scale`);
    `compiled`: draw with the numba kernels when they load (the same frames)."""
    if name == "gymnasium":
        return Gymnasium()
    if name not in RENDERERS:
        raise UserError(f"--renderer {name}: must be one of {', '.join(RENDERERS)}")
    installed = {"gymnasium": gymnasium.__version__,
                 "pygame-ce": pygame.version.ver if getattr(pygame, "IS_CE", False) else "none (pygame)"}
    if installed != VERIFIED:
        found = ", ".join(f"{k} {v}" for k, v in installed.items())
        wanted = ", ".join(f"{k} {v}" for k, v in VERIFIED.items())
        raise UserError(f"--renderer {name} reads CarRacing internals and was verified on {wanted}, "
                        f"but this is {found}: use --renderer gymnasium (or install the verified versions)")
    if name == "approx" and not 0.05 <= approx_scale <= 1:
        raise UserError(f"--approx_scale {approx_scale}: must be in [0.05, 1]")
    if compiled and kernels.load():
        return FastCompiled() if name == "fast" else ApproxCompiled(approx_scale)
    return Fast() if name == "fast" else Approx(approx_scale)


class Gymnasium:
    """Gymnasium's own state-pixel rendering, unchanged."""

    def state_pixels(self, env):
        return cr.CarRacing._render(env, "state_pixels")


def _grass():
    """The 400 grass quads, with the float expressions of CarRacing._render_road."""
    d = cr.GRASS_DIM
    quads = [[(d * x + d, d * y + 0), (d * x + 0, d * y + 0), (d * x + 0, d * y + d), (d * x + d, d * y + d)]
             for x in range(-20, 20, 2) for y in range(-20, 20, 2)]
    return np.array(quads, dtype=np.float64)


GRASS = _grass()  # (400, 4, 2)
FIELD_X = np.array([cr.PLAYFIELD, cr.PLAYFIELD, -cr.PLAYFIELD, -cr.PLAYFIELD])  # the playfield polygon
FIELD_Y = np.array([cr.PLAYFIELD, -cr.PLAYFIELD, -cr.PLAYFIELD, cr.PLAYFIELD])


def camera(env):
    """(angle, zoom, translation) of CarRacing._render, computed with the same operations."""
    angle = -env.car.hull.angle
    zoom = 0.1 * cr.SCALE * max(1 - env.t, 0) + cr.ZOOM * cr.SCALE * min(env.t, 1)
    scroll_x = -(env.car.hull.position[0]) * zoom
    scroll_y = -(env.car.hull.position[1]) * zoom
    trans = pygame.math.Vector2((scroll_x, scroll_y)).rotate_rad(angle)
    return angle, zoom, (W / 2 + trans[0], H / 4 + trans[1])


def rotation(angle):
    """pygame's own (cos, sin) of `angle`. pygame rotates (x, y) to (c*x - s*y, s*x + c*y) with
    separately rounded products (and exact quarter turns special-cased); rotating (1, 0) yields
    its (c, s), including those special cases, so the same products give the same doubles."""
    return pygame.math.Vector2(1.0, 0.0).rotate_rad(angle)


def transform(x, y, angle, zoom, trans):
    """Screen coordinates of world points (x, y), bit-identical to Vector2.rotate_rad + zoom + trans."""
    c, s = rotation(angle)
    return (c * x - s * y) * zoom + trans[0], (s * x + c * y) * zoom + trans[1]


def draw_car(car, surface, zoom, trans, angle, scale=1.0):
    """Car.draw without particles (as for state pixels), with the same doubles: Box2D's own
    transform of each vertex, then pygame's rotation as plain float arithmetic, not a Vector2
    per vertex. `scale` multiplies the screen coordinates (for Approx)."""
    c, s = rotation(angle)
    tx, ty = trans

    def draw(points, color):
        screen = [((c * p[0] - s * p[1]) * zoom + tx, (s * p[0] + c * p[1]) * zoom + ty) for p in points]
        if scale != 1.0:
            screen = [(x * scale, y * scale) for x, y in screen]
        pygame.draw.polygon(surface, color=color, points=screen)

    for obj in car.drawlist:
        color = [int(v * 255) for v in obj.color]
        for f in obj.fixtures:
            t = f.body.transform
            draw([t * v for v in f.shape.vertices], color)
            if "phase" not in obj.__dict__:
                continue
            # the wheel's white stripe, as Car.draw
            a1, a2 = obj.phase, obj.phase + 1.2
            s1, s2, c1, c2 = math.sin(a1), math.sin(a2), math.cos(a1), math.cos(a2)
            if s1 > 0 and s2 > 0:
                continue
            if s1 > 0:
                c1 = np.sign(c1)
            if s2 > 0:
                c2 = np.sign(c2)
            w, y1, y2 = cd.WHEEL_W * cd.SIZE, cd.WHEEL_R * c1 * cd.SIZE, cd.WHEEL_R * c2 * cd.SIZE
            stripe = [(-w, y1), (w, y1), (w, y2), (-w, y2)]
            draw([t * v for v in stripe], cd.WHEEL_WHITE)


class Track:
    """Grass then road/kerb quads of the env's current track, rebuilt when road_poly changes (reset).
    `cull`: kernels.cull to transform and cull the quads in one compiled loop (the same result)."""

    def __init__(self, cull=None):
        self.road_poly, self.size, self.cull = None, -1, cull

    def update(self, env):
        if env.road_poly is not self.road_poly or len(env.road_poly) != self.size:
            self.road_poly, self.size = env.road_poly, len(env.road_poly)
            road = np.array([poly for poly, _ in env.road_poly], dtype=np.float64).reshape(-1, 4, 2)
            self.x, self.y = np.ascontiguousarray(np.concatenate([GRASS, road]).transpose(2, 1, 0))  # (4, quads)
            self.colors = [color for _, color in env.road_poly]  # tiles' arrays change colour in place
            self.out = np.empty((2, self.x.shape[1], 4)), np.empty(self.x.shape[1], np.int64)

    def visible_arrays(self, env, angle, zoom, trans, top=0, scale=1.0):
        """Screen vertices x, y (drawn, 4) of each quad that passes CarRacing's own culling test
        and can touch screen rows `top`..H-1, in the original's draw order; how many of them
        (the first) are grass; and the road quads' colours (k, 3) as the int lists the original
        hands to gfxdraw (int() truncates toward zero, as astype does). With `cull`, x and y are
        views of a buffer that the next call overwrites."""
        self.update(env)
        # CarRacing's test: a vertex within MAX_SHAPE_DIM of the screen (lo, x_hi, y_hi). Also skip
        # quads that cannot touch a pixel of rows `top`..H-1 (gfxdraw truncates to ints and its
        # lines touch at most one pixel beyond; 2 px of margin): they change nothing.
        m = cr.MAX_SHAPE_DIM
        lo, x_hi, y_hi = keep = (-m, W + m, H + m)
        left, right, top_y, bottom = touch = (-2.0, W + 2.0, top - 3.0, H + 2.0)
        if self.cull is not None:
            (qx, qy), drawn = self.out
            c, s = rotation(angle)
            k = self.cull.visible_quads(self.x, self.y, c, s, zoom, trans[0], trans[1], keep, touch, scale,
                                        qx, qy, drawn)
            qx, qy, drawn = qx[:k], qy[:k], drawn[:k]
        else:
            x, y = transform(self.x, self.y, angle, zoom, trans)
            inside = ((lo <= x) & (x <= x_hi) & (lo <= y) & (y <= y_hi)).any(axis=0)
            reach = ((x.max(axis=0) >= left) & (x.min(axis=0) <= right)
                     & (y.max(axis=0) >= top_y) & (y.min(axis=0) <= bottom))
            drawn = np.flatnonzero(inside & reach)
            qx, qy = x[:, drawn].T, y[:, drawn].T
            if scale != 1.0:
                qx, qy = qx * scale, qy * scale
        grass = int(np.searchsorted(drawn, len(GRASS)))
        road = np.array([self.colors[i] for i in (drawn[grass:] - len(GRASS)).tolist()], dtype=np.float64)
        return qx, qy, grass, road.reshape(-1, 3).astype(np.int64)

    def visible(self, env, angle, zoom, trans, top=0, scale=1.0):
        """(screen quad, colour) of each quad of `visible_arrays`, as the objects gfxdraw takes."""
        qx, qy, grass, road = self.visible_arrays(env, angle, zoom, trans, top, scale)
        return zip(np.stack([qx, qy], axis=2).tolist(), [env.grass_color] * grass + road.tolist())


class TextCache:
    """The reward text surfaces of CarRacing._render: one font, one render per distinct string
    (smoothscaled by `scale` for a smaller canvas)."""

    def __init__(self, scale=1.0):
        self.scale, self.font, self.surfaces = scale, None, {}

    def get(self, reward):
        if self.font is None or not pygame.font.get_init():
            pygame.font.init()
            self.font, self.surfaces = pygame.font.Font(pygame.font.get_default_font(), 42), {}
        text = f"{reward:04.0f}"
        if text not in self.surfaces:
            if len(self.surfaces) > 4096:
                self.surfaces.clear()
            surface = self.font.render(text, True, (255, 255, 255), (0, 0, 0))
            if self.scale != 1.0:
                w, h = surface.get_size()
                rgb = pygame.Surface((w, h))  # the text surface is 8-bit; smoothscale needs 32
                rgb.blit(surface, (0, 0))
                surface = pygame.transform.smoothscale(rgb, (max(1, round(w * self.scale)), max(1, round(h * self.scale))))
            self.surfaces[text] = surface
        return self.surfaces[text]


def text_rect(surface):
    """Where CarRacing._render blits the reward text."""
    rect = surface.get_rect()
    rect.center = (60, H - H * 2.5 / 40.0)
    return rect


def to_array(surface):
    """(h, w, 3) uint8, writeable and C-contiguous: the values of Gymnasium's pixels3d transpose."""
    w, h = surface.get_size()
    return np.frombuffer(bytearray(pygame.image.tobytes(surface, "RGB")), np.uint8).reshape(h, w, 3)


class Fast:
    """Pixel-identical state pixels at ~1/3 of the CPU time. Per frame:

    1. The scene is drawn on a persistent 1000x800 canvas (not yet flipped), with the same
       gfxdraw calls on the same quads and float coordinates as the original. When the
       playfield polygon covers the screen with margin (almost always), it is replaced by a
       fill with the exact pixel gfxdraw would write. Canvas rows 0-99 are skipped: after the
       flip they lie under the opaque indicator box, and gfxdraw never blends across pixels.
       Quads that pass the original's culling test but cannot touch a visible pixel are skipped.
    2. pygame's smoothscale shrinks x (row by row) then y. The x pass commutes with the
       vertical flip, so the scene rows are shrunk to 96 wide first and flipped there; the
       indicator box is drawn by the env's own code on a separate canvas and shrunk likewise;
       one y pass of the stacked 96x800 image gives the 96x96 frame.
    3. If an indicator bar sticks out of its box (detected on a sentinel row), the frame is
       finished the original way: full flip, indicators, text, smoothscale.
    """

    def __init__(self):
        self.canvas = pygame.Surface((W, H))
        self.hud = pygame.Surface((W, H))
        self.narrow = pygame.Surface((cr.STATE_W, H - 100))
        self.tall = pygame.Surface((cr.STATE_W, H))
        self.hud_narrow = pygame.Surface((cr.STATE_W, 100))
        self.small = pygame.Surface((cr.STATE_W, cr.STATE_H))
        self.probe = pygame.Surface((1, 1))
        self.track, self.text = Track(), TextCache()
        self.sentinel_row = None

    def state_pixels(self, env):
        if "t" not in env.__dict__:
            return None  # reset() not called yet, as the original
        angle, zoom, trans = camera(env)
        self._scene(env, angle, zoom, trans)
        text = self.text.get(env.reward)
        if self._hud(env, text):
            scene = pygame.transform.smoothscale(self.canvas.subsurface((0, 100, W, H - 100)),
                                                 self.narrow.get_size(), self.narrow)
            self.tall.blit(pygame.transform.flip(scene, False, True), (0, 0))
            pygame.transform.smoothscale(self.hud.subsurface((0, H - 100, W, 100)),
                                         self.hud_narrow.get_size(), self.hud_narrow)
            self.tall.blit(self.hud_narrow, (0, H - 100))
            pygame.transform.smoothscale(self.tall, self.small.get_size(), self.small)
        else:
            env.surf = pygame.transform.flip(self.canvas, False, True)
            env._render_indicators(W, H)
            env.surf.blit(text, text_rect(text))
            pygame.transform.smoothscale(env.surf, self.small.get_size(), self.small)
        return to_array(self.small)

    def _scene(self, env, angle, zoom, trans):
        rows = (0, 100, W, H - 100)
        field = list(zip(*(v.tolist() for v in transform(FIELD_X, FIELD_Y, angle, zoom, trans))))
        corners = [(int(x), int(y)) for x, y in field]
        if _covers(corners, -8, -8, W + 8, H + 8):
            gfxdraw.pixel(self.probe, 0, 0, env.bg_color)
            self.canvas.fill(self.probe.get_at((0, 0)), rows)
        else:
            self.canvas.fill((0, 0, 0), rows)
            gfxdraw.aapolygon(self.canvas, field, env.bg_color)
            gfxdraw.filled_polygon(self.canvas, field, env.bg_color)
        for poly, color in self.track.visible(env, angle, zoom, trans, top=100):
            gfxdraw.aapolygon(self.canvas, poly, color)
            gfxdraw.filled_polygon(self.canvas, poly, color)
        draw_car(env.car, self.canvas, zoom, trans, angle)

    def _hud(self, env, text):
        """Draw the indicators and text on self.hud; False if anything reached above the box."""
        row = (0, int(HUD_TOP) - 1, W, 1)
        self.hud.fill(SENTINEL, row)
        if self.sentinel_row is None:
            self.sentinel_row = pygame.image.tobytes(self.hud.subsurface(row), "RGB")
        env.surf = self.hud
        env._render_indicators(W, H)
        self.hud.blit(text, text_rect(text))
        return pygame.image.tobytes(self.hud.subsurface(row), "RGB") == self.sentinel_row


def _covers(quad, x0, y0, x1, y1):
    """Whether the convex integer quad contains the rectangle [x0, x1] x [y0, y1] (exact integer test)."""
    sign = 0
    for (ax, ay), (bx, by) in zip(quad, quad[1:] + quad[:1]):
        for px, py in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
            cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
            if cross == 0 or (sign and (cross > 0) != (sign > 0)):
                return False
            sign = sign or cross
    return True


class Approx:
    """The same scene drawn on a canvas `scale` times 1000x800 (without anti-aliased edges), then
    flipped, the env's own indicators drawn at that size, and shrunk to 96x96 as the original."""

    def __init__(self, scale):
        self.scale = scale
        self.canvas = pygame.Surface((round(W * scale), round(H * scale)))
        self.small = pygame.Surface((cr.STATE_W, cr.STATE_H))
        self.track, self.text = Track(), TextCache(scale)

    def state_pixels(self, env):
        if "t" not in env.__dict__:
            return None
        s = self.scale
        angle, zoom, trans = camera(env)
        self._scene(env, angle, zoom, trans)
        env.surf = pygame.transform.flip(self.canvas, False, True)
        env._render_indicators(*self.canvas.get_size())
        text = self.text.get(env.reward)
        rect = text.get_rect()
        rect.center = (round(60 * s), round((H - H * 2.5 / 40.0) * s))
        env.surf.blit(text, rect)
        pygame.transform.smoothscale(env.surf, self.small.get_size(), self.small)
        return to_array(self.small)

    def _scene(self, env, angle, zoom, trans):
        s = self.scale
        self.canvas.fill((0, 0, 0))
        x, y = transform(FIELD_X, FIELD_Y, angle, zoom, trans)
        gfxdraw.filled_polygon(self.canvas, list(zip((x * s).tolist(), (y * s).tolist())), env.bg_color)
        for poly, color in self.track.visible(env, angle, zoom, trans, top=100, scale=s):
            gfxdraw.filled_polygon(self.canvas, poly, color)
        draw_car(env.car, self.canvas, zoom, trans, angle, scale=s)


class ColorMap:
    """Mapped pixel values of colours, exactly as gfxdraw parses and maps them."""

    def __init__(self, surface):
        self.probe, self.cache = pygame.Surface((1, 1), 0, surface), {}
        self.masks, self.shifts, self.losses = surface.get_masks(), surface.get_shifts(), surface.get_losses()

    def obj(self, color):
        """Any colour object gfxdraw accepts (arrays of floats, tuples): through a probe pixel."""
        key = tuple(np.asarray(color).tolist())
        if key not in self.cache:
            gfxdraw.pixel(self.probe, 0, 0, color)
            self.cache[key] = self.probe.get_at_mapped((0, 0)) & 0xFFFFFFFF
        return self.cache[key]

    def scene(self, env, grass, road):
        """uint32 colours of the playfield, then `grass` grass quads, then the road quads `road`
        (the int colours of Track.visible_arrays), in draw order."""
        return np.concatenate([[self.obj(env.bg_color)], np.full(grass, self.obj(env.grass_color)),
                               self.ints(road)]).astype(np.uint32)

    def ints(self, rgb):
        """(k, 3) int64 colours in 0..255 -> uint32 SDL_MapRGBA(r, g, b, 255)."""
        if rgb.size and (rgb.min() < 0 or rgb.max() > 255):
            raise ValueError("colour out of range")  # as gfxdraw would
        m, s, l = self.masks, self.shifts, self.losses
        v = (((rgb[:, 0] >> l[0]) << s[0]) | ((rgb[:, 1] >> l[1]) << s[1]) | ((rgb[:, 2] >> l[2]) << s[2])
             | (((255 >> l[3]) << s[3]) & m[3]))
        return v.astype(np.uint32)


def pixel_view(surface):
    """uint32 (h, w) view of a 32-bit surface's pixels, indexed [y, x] (locks it while alive)."""
    return pygame.surfarray.pixels2d(surface).T


def surface_format(surface):
    """int64[8] masks and shifts (R, G, B, A) of a 32-bit surface, for kernels.raster."""
    losses = surface.get_losses()
    if surface.get_bytesize() != 4 or any(losses[:3]) or (surface.get_masks()[3] and losses[3]):
        raise ValueError("kernels.raster draws on 32-bit surfaces without channel losses only")
    return np.array(list(surface.get_masks()) + list(surface.get_shifts()), dtype=np.int64)


def polygon_arrays(qx, qy):
    """Flat vertex coordinates and offsets of quads (k, 4) for kernels.raster.draw_polys."""
    return qx.ravel(), qy.ravel(), np.arange(0, 4 * len(qx) + 1, 4, dtype=np.int64)


class FastCompiled(Fast):
    """Fast with the scene's polygons drawn by kernels.raster.draw_polys (gfxdraw's aapolygon then
    filled_polygon, bit for bit) into a view of the canvas, and smoothscale's vertical pass by
    kernels.raster.shrink_y_rgb, which reads the scene rows flipped and writes the RGB frame (its
    horizontal pass stays pygame's SSE2 code); the quads are culled by kernels.cull. The car and
    the indicators are still drawn by pygame. The same bytes as Fast (tests/test_renderer.py).

    Each frame redraws every canvas row and HUD row it reads, so all the FastCompiled of a process
    draw on one set of surfaces (`_SCRATCH`): K envs of the batched path then stream one canvas
    through the caches instead of K (the fill and the horizontal shrink are bound by memory)."""

    _SCRATCH = {}

    def __init__(self):
        super().__init__()
        from kernels import cull, raster
        self.raster, self.track = raster, Track(cull)
        if not self._SCRATCH:
            self._SCRATCH.update(canvas=self.canvas, hud=self.hud, narrow=self.narrow, hud_narrow=self.hud_narrow,
                                 pix=pixel_view(self.canvas))  # kept: the canvas is never blitted onto
        vars(self).update(self._SCRATCH)
        self.fmt, self.colors = surface_format(self.canvas), ColorMap(self.canvas)
        self.shifts = self.fmt[4:7].copy()  # R, G, B
        self.clip = np.array([0, 0, W, H], np.int64)
        self.black = self.canvas.map_rgb((0, 0, 0)) & 0xFFFFFFFF

    def state_pixels(self, env):
        if "t" not in env.__dict__:
            return None
        angle, zoom, trans = camera(env)
        self._scene(env, angle, zoom, trans)
        text = self.text.get(env.reward)
        out = np.empty((cr.STATE_H, cr.STATE_W, 3), np.uint8)
        if self._hud(env, text):  # as Fast: the x pass, then one y pass of the flipped scene rows and the HUD's
            pygame.transform.smoothscale(self.canvas.subsurface((0, 100, W, H - 100)), self.narrow.get_size(),
                                         self.narrow)
            pygame.transform.smoothscale(self.hud.subsurface((0, H - 100, W, 100)), self.hud_narrow.get_size(),
                                         self.hud_narrow)
            self.raster.shrink_y_rgb(pixel_view(self.narrow), pixel_view(self.hud_narrow), True, out, self.shifts)
        else:
            env.surf = pygame.transform.flip(self.canvas, False, True)
            env._render_indicators(W, H)
            env.surf.blit(text, text_rect(text))
            tall = pixel_view(pygame.transform.smoothscale(env.surf, (cr.STATE_W, H)))
            self.raster.shrink_y_rgb(tall[:H - 100], tall[H - 100:], False, out, self.shifts)
        return out

    def _scene(self, env, angle, zoom, trans):
        fx, fy = transform(FIELD_X, FIELD_Y, angle, zoom, trans)
        qx, qy, grass, road = self.track.visible_arrays(env, angle, zoom, trans, top=100)
        colors = self.colors.scene(env, grass, road)
        if _covers([(int(x), int(y)) for x, y in zip(fx.tolist(), fy.tolist())], -8, -8, W + 8, H + 8):
            self.pix[100:] = colors[0]  # as Fast: the fill equals the playfield polygon there
            xs, ys, starts = polygon_arrays(qx, qy)
            colors = colors[1:]
        else:
            self.pix[100:] = self.black
            xs, ys, starts = polygon_arrays(np.vstack([fx, qx]), np.vstack([fy, qy]))
        flags = np.ones(len(colors), np.bool_)
        self.raster.draw_polys(self.pix, xs, ys, starts, colors, flags, flags, self.clip, 100, H, self.fmt)
        draw_car(env.car, self.canvas, zoom, trans, angle)


class ApproxCompiled(Approx):
    """Approx with the polygons filled by kernels.raster.draw_polys (gfxdraw's filled_polygon, bit
    for bit); the rest as Approx. The same bytes as Approx."""

    def __init__(self, scale):
        super().__init__(scale)
        from kernels import cull, raster
        self.raster, self.track = raster, Track(cull)
        self.fmt, self.colors = surface_format(self.canvas), ColorMap(self.canvas)
        self.clip = np.array([0, 0, *self.canvas.get_size()], np.int64)
        self.black = self.canvas.map_rgb((0, 0, 0)) & 0xFFFFFFFF

    def _scene(self, env, angle, zoom, trans):
        s = self.scale
        fx, fy = transform(FIELD_X, FIELD_Y, angle, zoom, trans)
        qx, qy, grass, road = self.track.visible_arrays(env, angle, zoom, trans, top=100, scale=s)
        colors = self.colors.scene(env, grass, road)
        xs, ys, starts = polygon_arrays(np.vstack([fx * s, qx]), np.vstack([fy * s, qy]))
        pix = pixel_view(self.canvas)
        pix[:] = self.black
        self.raster.draw_polys(pix, xs, ys, starts, colors, np.zeros(len(colors), np.bool_),
                               np.ones(len(colors), np.bool_), self.clip, 0, self.clip[3], self.fmt)
        del pix  # unlock: the canvas is flipped and blitted from next
        draw_car(env.car, self.canvas, zoom, trans, angle, scale=s)
