"""Whether the compiled renderer and resize give Gymnasium's bytes, frame by frame, over many episodes.

    python bench/exact.py [--seeds 20] [--steps 1000]

For each seed, two episodes: random actions, then the actions of the agent this repository
ships (vae/vae.json, rnn/rnn.json, log/carracing.cma.4.16.best.json), which drives on the
road and sometimes off it. Gymnasium's CarRacing-v3 and the same env with its state pixels
drawn by the compiled renderer (renderer.FastCompiled) step in lockstep with the same actions;
every 96x96 frame (the reset frame and the 1 s zoom-in included) is compared, and so is the
64x64 observation made by the compiled resize against the one Pillow makes. An episode stops
at --steps or when the car leaves the playfield.
"""
import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from gymnasium.envs.box2d.car_racing import CarRacing  # noqa: E402

import env as env_module  # noqa: E402
import kernels  # noqa: E402
import renderer  # noqa: E402
from model import seeded_agent  # noqa: E402
from config import EnvConfig, ModelConfig  # noqa: E402


class Compiled(CarRacing):
    """Gymnasium's CarRacing with its state pixels drawn by the compiled renderer."""

    def __init__(self):
        super().__init__()
        self.r = renderer.make("fast", None, compiled=True)
        assert type(self.r) is renderer.FastCompiled, "the numba kernels did not load"

    def _render(self, mode):
        return self.r.state_pixels(self) if mode == "state_pixels" else super()._render(mode)


def episode(ours, theirs, seed, steps, act):
    """(frames compared, raw frames differing, observations differing, steps on the grass)."""
    a, b = ours.reset(seed=seed)[0], theirs.reset(seed=seed)[0]
    counts = np.zeros(4, np.int64)
    for t in range(steps + 1):
        obs = env_module._process_frame(a, compiled=True)
        counts += (1, not np.array_equal(a, b), not np.array_equal(obs, env_module._process_frame(b)),
                   not any(w.tiles for w in theirs.car.wheels))
        if t == steps:
            break
        action = act(obs, t)
        a, _, end_a, _, _ = ours.step(action)
        b, _, end_b, _, _ = theirs.step(action)
        assert end_a == end_b
        if end_b:
            break
    return counts


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=20, help="tracks; two episodes each (random, agent)")
    p.add_argument("--steps", type=int, default=1000, help="steps per episode at most")
    args = p.parse_args()
    assert kernels.load(), "the numba kernels did not load"
    ours, theirs = Compiled(), CarRacing()
    agent = seeded_agent(str(Path(__file__).resolve().parents[1] / "log/carracing.cma.4.16.best.json"), 0,
                         ModelConfig(), EnvConfig())
    totals = {"random": np.zeros(4, np.int64), "agent": np.zeros(4, np.int64)}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        agent.reset()
        policies = {"random": lambda obs, t: np.array([rng.uniform(-1, 1), rng.uniform(0, 1), rng.uniform(0, 1)]),
                    "agent": lambda obs, t: agent.get_action(agent.encode_obs(obs)[0])}
        for name, act in policies.items():
            counts = episode(ours, theirs, seed, args.steps, act)
            totals[name] += counts
            print(f"seed {seed} {name}: {counts[0]} frames, {counts[1]} differ, observations {counts[2]} differ, "
                  f"{counts[3]} on the grass", flush=True)
    for name, (frames, raw, obs, grass) in totals.items():
        print(f"{name}: {frames} frames, {raw} raw frames differ from Gymnasium's, {obs} observations differ "
              f"from Pillow's resize; {grass} frames with every wheel off the road")


if __name__ == "__main__":
    main()
