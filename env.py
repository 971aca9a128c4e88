"""The CarRacing environment as the original saw it: Gymnasium's CarRacing-v3 behind gym 0.9.4's API.

`make_env()` builds `CarRacingWrapper`, a subclass of Gymnasium 1.4.0's `CarRacing` created
directly (no `gym.make`, hence no TimeLimit: the 1000-step cap belongs to the rollout loops,
as in the original). Its API is the original's (gym 0.9.4), which every stage script uses:

    env = make_env(seed=7)              # seed >= 0: like the original's env.seed(7)
    obs = env.reset()                   # processed frame: (64, 64, 3) uint8
    obs, reward, done, info = env.step(np.array([steer, gas, brake]))

- `reset()` returns only the observation. Like gym 0.9.4, Gymnasium's reset ends with one
  physics step without action (reward 0), so the first frame is already a rendered one.
- `step()` returns `done = terminated or truncated`; with `full_episode=True` it is always
  False (extract.py records full-length episodes). `info` is Gymnasium's dict.
- `env.seed(s)` makes the next `reset()` draw its track from a generator seeded with `s`;
  later resets continue that generator (consecutive tracks), as gym's `env.seed` did.
- An episode ends when every tile is visited (`lap_complete_percent=1.0`, gym 0.9.4's rule;
  Gymnasium's default 0.95 is an option in config.EnvConfig) or the car leaves the playfield
  (reward -100).
- Headless by default (pygame draws offscreen, no display needed). With `render_mode=True`
  every step also draws Gymnasium's window ("human" mode); no `render()` call is needed, but
  the original's `env.render("human")` / `env.render("rgb_array")` work (gym 0.9.4's modes).

Observations go through `_process_frame`, the original's preprocessing reproduced exactly.

`python env.py` lets a person drive with the arrow keys (needs a display).
"""
import os
import sys

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # before gymnasium imports pygame

import numpy as np
from gymnasium import spaces
from gymnasium.envs.box2d.car_racing import CarRacing
from PIL import Image

import kernels
import renderer as renderers
from config import EnvConfig, parse
from files.episodes import FRAME_SHAPE
from plumbing.cli import UserError, run

SCREEN_Y, SCREEN_X = FRAME_SHAPE[:2]  # the original's names for the observation's size


def _process_frame(frame, compiled=False):
    """96x96x3 uint8 state pixels -> the original's 64x64x3 uint8 observation, bit for bit.

    The original did `scipy.misc.imresize(frame[:84] / 255.0, (64, 64))`, then
    `((1.0 - obs) * 255).round().astype(np.uint8)` on the resulting uint8 array. imresize
    (scipy <= 1.2) first stretches the float image to bytes over its whole min..max range
    (`bytescale`), then resizes with Pillow's bilinear filter. The stretch below follows scipy
    1.1's float64 operations one by one, evaluated once per byte value (a lookup table): the
    result depends only on the byte, and min(v / 255) = min(v) / 255 since division is monotonic.
    `compiled`: resize with kernels/frame.py (kernels.load() must have returned True).
    """
    crop = frame[0:84]  # the indicator bar goes
    x = np.arange(256, dtype=np.float64) / 255.0  # every possible value of frame / 255.0
    cmin, cmax = x[crop.min()], x[crop.max()]
    cscale = cmax - cmin
    if cscale == 0:
        cscale = 1
    scale = 255.0 / cscale
    stretch = (((x - cmin) * scale).clip(0, 255) + 0.5).astype(np.uint8)
    if compiled:  # the resize and the wrap in one compiled pass (kernels/frame.py): the same bytes
        return kernels.frame.resize_wrapped(crop, stretch)
    small = np.asarray(Image.fromarray(stretch[crop], "RGB").resize((SCREEN_X, SCREEN_Y), Image.Resampling.BILINEAR))
    return _minus_one_wrapped(small)


def _minus_one_wrapped(v):
    """The net effect of the original's `((1.0 - v) * 255).round().astype(np.uint8)` on a uint8
    array `v`: 255 - 255 v is cast to uint8 modulo 256, i.e. v - 1 modulo 256 (0 -> 255).
    Written out because a float-to-uint8 cast of an out-of-range value is undefined in C."""
    return ((v.astype(np.int16) - 1) % 256).astype(np.uint8)


class CarRacingWrapper(CarRacing):
    """Gymnasium's CarRacing with processed 64x64 observations and the gym 0.9.4 API (see module doc).

    The parent's step draws the 96x96 frame with `_render("state_pixels")`; that one mode goes
    to `renderer` (renderer.py; "fast" is pixel-identical to Gymnasium's and cheaper).
    """

    def __init__(self, full_episode=False, render_mode=None, lap_complete_percent=EnvConfig.lap_complete_percent,
                 renderer=EnvConfig.renderer, approx_scale=EnvConfig.approx_scale, compiled=EnvConfig.compiled):
        super().__init__(render_mode=render_mode, lap_complete_percent=lap_complete_percent)
        self.renderer = renderers.make(renderer, approx_scale, compiled)  # one per env: it caches the track
        self.compiled = compiled and kernels.load()
        self.full_episode = full_episode
        self.observation_space = spaces.Box(low=0, high=255, shape=(SCREEN_Y, SCREEN_X, 3), dtype=np.uint8)
        self._next_seed = None

    def seed(self, seed):
        """Seed the track generator: the next reset() starts from `seed` (gym 0.9.4's env.seed)."""
        self._next_seed = int(seed)

    def reset(self):
        obs, _ = super().reset(seed=self._next_seed)  # ends with self.step(None), which processes the frame
        self._next_seed = None
        return obs

    def _render(self, mode):
        if mode == "state_pixels":
            return self.renderer.state_pixels(self)
        return super()._render(mode)

    def render(self, mode=None, close=False):
        """gym 0.9.4's `render(mode="human", close=False)`: "rgb_array" returns the full-size (400 x
        600) frame, "state_pixels" the 96 x 96 one, "human" draws the window (an env made with
        render_mode=True has drawn it in step already); `close` closes it. No mode: Gymnasium's
        render (the mode the env was made with)."""
        if close:
            return self.close()
        if mode is None:
            return super().render()
        if mode == "human" and self.render_mode == "human":
            return None
        return self._render(mode)

    def full_frame(self):
        """The full-size (400 x 600) RGB image of the current state, as in the env's window."""
        return self._render("rgb_array")

    def step(self, action):
        frame, reward, terminated, truncated, info = super().step(None if action is None else np.asarray(action))
        done = False if self.full_episode else bool(terminated or truncated)
        return _process_frame(frame, self.compiled), reward, done, info


def has_display():
    """Whether a window can be shown: a DISPLAY or WAYLAND_DISPLAY on Linux, and SDL not set to
    draw offscreen (SDL_VIDEODRIVER=dummy or offscreen)."""
    if os.environ.get("SDL_VIDEODRIVER") in ("dummy", "offscreen"):
        return False
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def make_env(env_name="carracing", seed=-1, render_mode=False, full_episode=False,
             lap_complete_percent=EnvConfig.lap_complete_percent, renderer=EnvConfig.renderer,
             approx_scale=EnvConfig.approx_scale, compiled=EnvConfig.compiled):
    """The original's make_env: a CarRacingWrapper, seeded when `seed >= 0`, headless unless `render_mode`.
    The keywords after the original's four are config.EnvConfig's fields."""
    env = CarRacingWrapper(full_episode=full_episode, render_mode="human" if render_mode else None,
                           lap_complete_percent=lap_complete_percent, renderer=renderer, approx_scale=approx_scale,
                           compiled=compiled)
    if seed >= 0:
        env.seed(seed)
    return env


def env_from_config(cfg, seed=-1, render_mode=False, full_episode=False):
    """`make_env` with every option of an EnvConfig."""
    return make_env(cfg.env_name, seed=seed, render_mode=render_mode, full_episode=full_episode,
                    lap_complete_percent=cfg.lap_complete_percent, renderer=cfg.renderer, approx_scale=cfg.approx_scale,
                    compiled=cfg.compiled)


def main():
    """Drive by hand, as the original's env.py: arrows steer / gas (1.0) / brake (0.8),
    Enter restarts the episode, Esc or closing the window quits."""
    cfg = parse(EnvConfig, description=main.__doc__.replace("\n   ", ""))
    if not has_display():
        raise UserError("driving by hand needs a display (no DISPLAY or WAYLAND_DISPLAY, or SDL_VIDEODRIVER=dummy)")
    import pygame

    try:
        pygame.display.init()
    except pygame.error as e:
        raise UserError(f"driving by hand needs a display: {e}") from None
    if pygame.display.get_driver() in ("dummy", "offscreen"):  # SDL's fallback when no display answers
        raise UserError(f"driving by hand needs a display, and SDL found none (video driver {pygame.display.get_driver()})")
    env = env_from_config(cfg, render_mode=True)
    action = np.array([0.0, 0.0, 0.0])
    keys = {pygame.K_LEFT: (0, -1.0), pygame.K_RIGHT: (0, +1.0), pygame.K_UP: (1, +1.0), pygame.K_DOWN: (2, +0.8)}
    quit = False
    while not quit:
        env.reset()
        total_reward, steps, restart = 0.0, 0, False
        while True:
            for event in pygame.event.get():
                if event.type == pygame.KEYDOWN and event.key in keys:
                    index, value = keys[event.key]
                    action[index] = value
                elif event.type == pygame.KEYUP and event.key in keys:
                    index, value = keys[event.key]
                    if action[index] == value:
                        action[index] = 0.0
                elif event.type == pygame.KEYDOWN and event.key == pygame.K_RETURN:
                    restart = True
                elif (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE) or event.type == pygame.QUIT:
                    quit = True
            _, reward, done, _ = env.step(action)
            total_reward += reward
            if steps % 200 == 0 or done:
                print("action " + str([f"{x:+0.2f}" for x in action]))
                print(f"step {steps} total_reward {total_reward:+0.2f}")
            steps += 1
            if done or restart or quit:
                break
    env.close()


if __name__ == "__main__":
    run(main)
