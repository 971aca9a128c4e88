"""CPU seconds per CarRacing step with each state-pixel renderer, against Gymnasium's own,
and the approx renderer's pixel error (raw 96x96 and after the World Models processing).

    python bench/render.py [--seeds 3] [--steps 1000] [--scales 0.25,0.2]

"fast" and "approx" draw with the compiled kernels (the default); "fast, pygame" is the same
renderer drawing with pygame's calls (--compiled 0). All envs run in lockstep with the same seed and actions (seed i uses random actions when i is
even, "agent-like" smooth steering with gas when odd), each env.step timed with
time.process_time, so every renderer is measured in the same conditions, interleaved.
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from gymnasium.envs.box2d.car_racing import CarRacing
from PIL import Image

import renderer


class Env(CarRacing):
    """Gymnasium's CarRacing with its state pixels drawn by `r`."""

    def __init__(self, r):
        super().__init__()
        self.r = r

    def _render(self, mode):
        if mode == "state_pixels":
            return self.r.state_pixels(self)
        return super()._render(mode)


def wm_process(frame):
    """The original's _process_frame: crop, global min-max bytescale, PIL bilinear 64x64, v -> v-1 mod 256."""
    x = frame[:84].astype(np.float64) / 255.0
    lo, hi = x.min(), x.max()
    scaled = ((x - lo) * (255.0 / ((hi - lo) or 1.0))).clip(0, 255) + 0.5
    small = np.asarray(Image.fromarray(scaled.astype(np.uint8)).resize((64, 64), Image.BILINEAR))
    return (small.astype(np.int64) - 1) % 256


def action(rng, policy, t):
    if policy == "random":
        return np.array([rng.uniform(-1, 1), rng.uniform(0, 1), rng.uniform(0, 1)])
    return np.array([np.sin(t / 40.0 + rng.uniform(0, 0.1)), 1.0 if t % 60 < 45 else 0.0, 0.0])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="episodes per renderer")
    p.add_argument("--steps", type=int, default=1000, help="steps per episode")
    p.add_argument("--scales", default="0.25,0.2", help="approx canvas scales, comma separated")
    args = p.parse_args()

    approx = [f"approx {s}" for s in args.scales.split(",")]
    names = ["gymnasium", "fast", "fast, pygame"] + approx
    envs = {n: Env(renderer.make(n.split()[0].rstrip(","), float(n.split()[-1]) if n in approx else None,
                                 compiled=n != "fast, pygame")) for n in names}
    cpu = {n: 0.0 for n in names}
    parts = ("raw", "scene", "wm", "wm zoom-in")
    hist = {(n, part): np.zeros(256, np.int64) for n in approx for part in parts}
    frames = mismatched = 0
    for seed in range(args.seeds):
        policy = "random" if seed % 2 == 0 else "agent"
        rng = np.random.default_rng(seed)
        obs = {n: e.reset(seed=seed)[0] for n, e in envs.items()}
        for t in range(args.steps + 1):
            frames += 1
            mismatched += not np.array_equal(obs["fast"], obs["gymnasium"])
            mismatched += not np.array_equal(obs["fast, pygame"], obs["gymnasium"])
            ref, ref_wm = obs["gymnasium"].astype(np.int64), wm_process(obs["gymnasium"])
            for n in approx:
                diff = np.abs(obs[n].astype(np.int64) - ref)
                hist[n, "raw"] += np.bincount(diff.ravel(), minlength=256)
                hist[n, "scene"] += np.bincount(diff[:84].ravel(), minlength=256)
                wm = "wm" if t >= 50 else "wm zoom-in"
                hist[n, wm] += np.bincount(np.abs(wm_process(obs[n]) - ref_wm).ravel(), minlength=256)
            if t == args.steps:
                break
            a = action(rng, policy, t)
            done = []
            for n, e in envs.items():
                start = time.process_time()
                obs[n], _, terminated, truncated, _ = e.step(a)
                cpu[n] += time.process_time() - start
                done.append(terminated or truncated)
            if any(done):
                break
        print(f"seed {seed} ({policy}): {t} steps", flush=True)
    steps = frames - args.seeds

    print(f"\n{steps} steps per renderer, {args.seeds} seeds, interleaved step by step; "
          f"CPU time per env.step (time.process_time), one process")
    print(f"{'renderer':<14}{'ms/step':>9}{'steps/s':>9}{'speed-up':>10}")
    for n in names:
        ms = 1000 * cpu[n] / steps
        print(f"{n:<14}{ms:9.3f}{1000 / ms:9.0f}{cpu['gymnasium'] / cpu[n]:9.2f}x")
    print(f"\nfast (compiled) and fast, pygame vs gymnasium: {mismatched} of {2 * frames} frames differ")
    print("\napprox vs gymnasium, abs error on 0-255 (mean / p99 / max / >16):")
    for n in approx:
        print(f"{n:<14}" + "   ".join(f"{part}: {stats(hist[n, part])}" for part in parts))
    print("raw = the 96x96 frames, scene = their rows 0:84, wm = after the World Models processing (64x64)\n"
          "of the frames after the 1 s zoom-in, wm zoom-in = of the first 50 frames; the last figure is the\n"
          "share of values off by more than 16")


def stats(hist):
    """mean / p99 / max / share above 16 of the values counted in `hist` (index = abs error)."""
    values = np.arange(256)
    total = hist.sum()
    p99 = values[np.searchsorted(np.cumsum(hist), 0.99 * total)]
    return (f"{(hist * values).sum() / total:.3f} / {p99} / {values[hist > 0].max()} / "
            f"{100 * hist[17:].sum() / total:.2f}%")


if __name__ == "__main__":
    main()
