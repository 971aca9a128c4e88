"""Benchmark extract.py: frames/s against a bare Gymnasium CarRacing-v3 loop, and 2 ranks against 1.

    .venv/bin/python bench/extract.py [--episodes 4] [--frames 1000]

Every run is a fresh process timed end to end (start-up, resets, steps, saving) over the
same frames: `episodes` resets of `frames` steps each, with Gymnasium's renderer (like the
bare loop) and with the default fast one. Goals: extract / bare >= 0.9 with the same renderer
(the frame processing, policy and saving cost little next to Gymnasium's rendering), and
2 ranks / 1 rank >= 1.8 (on 2 idle cores).
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")
ENV = dict(os.environ, SDL_VIDEODRIVER="dummy", PYGAME_HIDE_SUPPORT_PROMPT="1", OMP_NUM_THREADS="1")

BARE_LOOP = """
import sys, gymnasium as gym
episodes, frames = int(sys.argv[1]), int(sys.argv[2])
env = gym.make("CarRacing-v3")
env.action_space.seed(0)
for episode in range(episodes):
    env.reset(seed=episode)
    for frame in range(frames):
        env.step(env.action_space.sample())
"""


def timed(cmd):
    """(wall seconds, CPU seconds of all child processes) of running `cmd`."""
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)


def extract(ranks, episodes, frames, folder, renderer):
    cmd = [sys.executable, str(REPO / "extract.py"), "--max_trials", str(episodes // ranks),
           "--max_frames", str(frames), "--dir_name", folder, "--renderer", renderer]
    return timed([MPIEXEC, "-n", str(ranks), *cmd] if ranks > 1 else cmd)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=4, help="episodes per run (even, split over 2 ranks)")
    p.add_argument("--frames", type=int, default=1000, help="frames per episode")
    args = p.parse_args()
    total = args.episodes * args.frames
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        bare = timed([sys.executable, "-c", BARE_LOOP, str(args.episodes), str(args.frames)])
        for renderer in ("gymnasium", "fast"):
            for ranks in (1, 2):
                runs[renderer, ranks] = extract(ranks, args.episodes, args.frames,
                                                os.path.join(tmp, f"{renderer}{ranks}"), renderer)
    print(f"{total} frames per run ({args.episodes} episodes x {args.frames}), end to end incl. start-up;")
    print("frames/s over wall time, and over the CPU seconds of all its processes (less sensitive to other load)")
    print(f"bare Gymnasium CarRacing-v3, random actions:     {total / bare[0]:6.1f} wall  {total / bare[1]:6.1f} cpu")
    for renderer in ("gymnasium", "fast"):
        one, two = runs[renderer, 1], runs[renderer, 2]
        print(f"extract.py --renderer {renderer:9s} 1 rank:  {total / one[0]:6.1f} wall  {total / one[1]:6.1f} cpu  "
              f"extract/bare {bare[0] / one[0]:.2f} wall, {bare[1] / one[1]:.2f} cpu"
              + (" (goal >= 0.9: same renderer as the bare loop)" if renderer == "gymnasium" else ""))
        print(f"extract.py --renderer {renderer:9s} 2 ranks: {total / two[0]:6.1f} wall  {total / two[1]:6.1f} cpu  "
              f"2 ranks/1 rank {one[0] / two[0]:.2f} wall (goal >= 1.8), {one[1] / two[1]:.2f} cpu")


if __name__ == "__main__":
    main()
