"""Benchmark the agent's rollouts: renderers, batched evaluation, and a projected CMA-ES generation.

    .venv/bin/python bench/rollout.py [--steps 300] [--episodes 16] [--envs 16] [--base_envs 8] [--sweep 4,8,16,32]

1. Renderers: CPU seconds (time.process_time) of the state-pixel call and of the whole env.step
   for each renderer, with pygame's drawing and with the compiled kernels (--compiled), against
   Gymnasium's own, the envs stepped interleaved with the same seed and actions.
2. The full agent (V encode + controller + LSTM per env step), env steps per CPU second of
   - the one-env path with Gymnasium's renderer and Pillow's resize (`simulate`, K = 1: the baseline),
   - the one-env path with the fast renderer, pygame's drawing,
   - the batched path (`simulate_batch`) with the fast renderer and pygame's drawing at K =
     --base_envs (8: the batched path as issue 18 found it, "today's"),
   - the batched path with the compiled kernels at K = --envs (16: the small preset's K),
   - the same with the approx renderer, compiled (not pixel-exact).
   Issue 18's goals: batched compiled / today's batched path >= 2.5x, and / one-env Gymnasium >= 8x.
   All runs drive --episodes episodes of the same controllers on the same tracks, capped at --steps.
3. Where the batched path's CPU time goes, pygame's drawing and compiled (instrumented runs):
   env physics, render, _process_frame, VAE encode, LSTM step, controller, the rest (Python);
   and the compiled render's own parts (polygons, shrinks, car, indicators, culling, the rest).
4. One CMA-ES generation at the paper's population (64 solutions x 16 episodes, 1000 steps each:
   1,024,000 env steps; an evaluation generation adds 1024 episodes) projected from the CPU
   rates of 2 for this machine's cores and for 16 and 64 cores (one core per worker process,
   master and imbalance ignored), and a real train.py generation with 2 workers and K = --envs
   against its projection.
5. With --sweep: the lockstep rate for each K, and one process with 2 threads.

V is a freshly initialised ConvVAE (the original's vae.json is not public); M and C are the
original's rnn.json and best.json when ../shared/tf_models exists. CPU time is the measure
that survives a machine shared with other work; wall rates are printed beside it.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402
import pygame  # noqa: E402
import torch  # noqa: E402

import env as env_module  # noqa: E402
import renderer  # noqa: E402
from agent import controller, rollout  # noqa: E402
from config import EnvConfig, ModelConfig  # noqa: E402
from env import env_from_config, make_env  # noqa: E402
from kernels import raster  # noqa: E402
from model import Model, simulate  # noqa: E402
from plumbing.torch_setup import set_torch_for_acting  # noqa: E402
from rnn.rnn import MDNRNN, hps_sample  # noqa: E402
from vae.vae import ConvVAE  # noqa: E402

TF_MODELS = REPO.parent / "shared" / "tf_models"
PAPER_STEPS = 64 * 16 * 1000


class Clock:
    """Accumulated CPU seconds of wrapped calls, by name."""

    def __init__(self):
        self.cpu = {}

    def wrap(self, name, fn):
        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - start
        return timed


RENDERERS = {"gymnasium": ("gymnasium", False), "fast, pygame": ("fast", False), "fast, compiled": ("fast", True),
             "approx, pygame": ("approx", False), "approx, compiled": ("approx", True)}  # name: (--renderer, --compiled)


def renderers(steps, seeds=2):
    """{renderer: (CPU s per renderer call, CPU s per env.step)} over the same seeds and actions."""
    names = tuple(RENDERERS)
    clock = Clock()
    envs = {}
    for n in names:
        e = make_env(renderer=RENDERERS[n][0], compiled=RENDERERS[n][1])
        e.renderer.state_pixels = clock.wrap(n, e.renderer.state_pixels)
        envs[n] = e
    step_cpu, render = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0.0)
    count = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        for e in envs.values():
            e.seed(seed)
            e.reset()
        before = dict(clock.cpu)  # the resets' renders are not steps
        for t in range(steps):
            a = np.array([np.sin(t / 40.0 + rng.uniform(0, 0.1)), 1.0 if t % 60 < 45 else 0.0, 0.0])
            for n, e in envs.items():
                start = time.process_time()
                e.step(a)
                step_cpu[n] += time.process_time() - start
            count += 1
        for n in names:
            render[n] += clock.cpu[n] - before[n]
    return {n: (render[n] / count, step_cpu[n] / count) for n in names}


def make_agent(folder, renderer, compiled):
    vae_path, rnn_path = os.path.join(folder, "vae.json"), os.path.join(folder, "rnn.json")
    if not os.path.exists(vae_path):
        ConvVAE().save_json(vae_path)
    if (TF_MODELS / "rnn" / "rnn.json").exists():
        rnn_path = str(TF_MODELS / "rnn" / "rnn.json")
    elif not os.path.exists(rnn_path):
        MDNRNN(hps_sample).save_json(rnn_path)
    model = Model(cfg=ModelConfig(vae_path=vae_path, rnn_path=rnn_path), env_cfg=EnvConfig(renderer=renderer, compiled=compiled))
    best = TF_MODELS / "log" / "carracing.cma.16.64.best.json"
    if best.exists():
        model.load_model(str(best))
    what = "original rnn.json + best.json, random V" if best.exists() else "random V, M and C"
    return model, what


def solutions(model, n):
    """n controllers near the loaded one (as a CMA-ES population would be)."""
    rng = np.random.default_rng(0)
    return [model.model_params + rng.normal(size=model.param_count) * 0.1 for _ in range(n)]


def one_env(model, sols, steps):
    """(steps, CPU s, wall s) of simulate, one solution after another, one episode each."""
    set_torch_for_acting(1)
    model.make_env()
    n, cpu, wall = 0, time.process_time(), time.perf_counter()
    for i, sol in enumerate(sols):
        model.set_model_params(sol)
        _, t_list = simulate(model, train_mode=True, render_mode=False, num_episode=1, seed=i, max_len=steps)
        n += sum(t + 1 for t in t_list)
    return n, time.process_time() - cpu, time.perf_counter() - wall


def batched(model, sols, steps, k, envs=None, threads=1):
    envs = envs or [env_from_config(model.env_cfg) for _ in range(k)]
    set_torch_for_acting(k)
    torch.set_num_threads(threads)
    n, cpu, wall = 0, time.process_time(), time.perf_counter()
    results = rollout.simulate_batch(model, envs, sols, list(range(len(sols))), num_episode=1, train_mode=True,
                                      max_len=steps)
    n = sum(t + 1 for _, t_list in results for t in t_list)
    return n, time.process_time() - cpu, time.perf_counter() - wall


def profile(model, sols, steps, k):
    """CPU seconds of each part of the batched path (instrumented: the wrappers add ~1 us a call)."""
    clock = Clock()
    envs = [env_from_config(model.env_cfg) for _ in range(k)]
    originals = []
    for e in envs:
        originals.append((e, e.step, e.renderer.state_pixels))
        e.step = clock.wrap("env.step", e.step)
        e.renderer.state_pixels = clock.wrap("render", e.renderer.state_pixels)
    process_frame = env_module._process_frame
    env_module._process_frame = clock.wrap("_process_frame", process_frame)
    model.encode_frames = clock.wrap("VAE encode", model.encode_frames)
    model.rnn.step = clock.wrap("LSTM", model.rnn.step)
    act = controller.act
    controller.act = clock.wrap("controller", act)
    try:
        n, cpu, _ = batched(model, sols, steps, k, envs)
    finally:
        env_module._process_frame = process_frame
        controller.act = act
        del model.encode_frames
        del model.rnn.step
        for e, step, render in originals:
            e.step, e.renderer.state_pixels = step, render
    c = clock.cpu
    parts = {"env physics (Box2D + CarRacing.step)": c["env.step"] - c["render"] - c["_process_frame"],
             "render (fast)": c["render"], "_process_frame (crop, bytescale, resize)": c["_process_frame"],
             "VAE encode": c["VAE encode"], "LSTM step": c["LSTM"], "controller": c["controller"]}
    parts["rest (Python, batching, resets, z noise)"] = cpu - sum(parts.values())
    return n, cpu, parts


def render_parts(model, sols, steps, k):
    """CPU seconds of the compiled renderer's parts in the batched path (instrumented), by
    wrapping the calls FastCompiled makes; what is left is the canvas fill, the colours, Python."""
    clock = Clock()
    envs = [env_from_config(model.env_cfg) for _ in range(k)]
    for e in envs:
        r = e.renderer
        r.state_pixels = clock.wrap("render", r.state_pixels)
        r.track.visible_arrays = clock.wrap("culling (kernels.cull)", r.track.visible_arrays)
        r._hud = clock.wrap("indicators and text (env's own code)", r._hud)
    patches = [(raster, "draw_polys", "polygons (kernels.raster.draw_polys)"),
               (pygame.transform, "smoothscale", "horizontal shrinks, scene and indicators (pygame)"),
               (renderer, "draw_car", "car (pygame draw.polygon, Python)"),
               (raster, "shrink_y_rgb", "vertical shrink to RGB (kernels.raster)")]
    originals = [getattr(module, name) for module, name, _ in patches]
    for (module, name, label), fn in zip(patches, originals):
        setattr(module, name, clock.wrap(label, fn))
    try:
        n, _, _ = batched(model, sols, steps, k, envs)
    finally:
        for (module, name, _), fn in zip(patches, originals):
            setattr(module, name, fn)
    parts = {label: seconds for label, seconds in clock.cpu.items() if label != "render"}
    parts["the rest (canvas fill, colours, Python)"] = clock.cpu["render"] - sum(parts.values())
    return n, clock.cpu["render"], parts


def sweep(model, ks, steps):
    """Issue 18's V question: the lockstep path's rate for each K (one thread, as train.py's
    workers), and one process with 2 threads (the other way to use 2 cores) at the largest K."""
    print(f"\n5. batched, fast, compiled: K envs in lockstep, K episodes capped at {steps} steps "
          "(V encodes K frames per call)")
    for k in ks:
        n, cpu, wall = batched(model, solutions(model, k), steps, k)
        print(f"   K={k:<3} 1 thread   {n / cpu:6.1f} steps per CPU s  {n / wall:6.1f} steps/s wall", flush=True)
    k = max(ks)
    n, cpu, wall = batched(model, solutions(model, k), steps, k, threads=2)
    print(f"   K={k:<3} 2 threads  {n / cpu:6.1f} steps per CPU s  {n / wall:6.1f} steps/s wall (against 2 x the "
          f"1-thread rate for 2 worker processes)", flush=True)


def train_generation(folder, rnn_path, steps, k):
    """Wall seconds of one train.py generation: 2 workers x 2 solutions x 4 episodes of `steps`."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [str(Path(sys.executable).parent / "mpiexec"), "-n", "3", sys.executable, "-W", "ignore",
           str(REPO / "train.py"), "--config", "smoke", "--num_episode", "4", "--max_generations", "1",
           "--eval_steps", "1000", "--max_episode_length", str(steps), "--envs_per_worker", str(k),
           "--vae_path", os.path.join(folder, "vae.json"), "--rnn_path", rnn_path,
           "--log_dir", os.path.join(folder, f"log{k}")]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    line = re.search(r"^gen 1 .*$", out, re.M).group(0)
    return float(re.search(r" ([0-9.]+) s \(master CPU", line).group(1)), line


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300, help="step cap of each episode")
    p.add_argument("--episodes", type=int, default=16, help="episodes (solutions) per agent run (at least --envs)")
    p.add_argument("--envs", type=int, default=16, help="K of the batched path (the small preset's)")
    p.add_argument("--base_envs", type=int, default=8, help="K of the batched pygame path (issue 18's baseline)")
    p.add_argument("--sweep", default="", help="also measure these K, comma separated (e.g. 4,8,16,32), and 2 threads")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start (other work on the machine "
          "slows wall times; CPU times less so)", flush=True)

    r = renderers(args.steps)
    print(f"\n1. renderers, {2 * args.steps} steps each, CPU ms (renderer call / whole env.step incl. the resize) and "
          "speed-up vs gymnasium")
    for n, (render, step) in r.items():
        print(f"   {n:<17} {1e3 * render:6.3f} / {1e3 * step:6.3f} ms   {r['gymnasium'][0] / render:5.2f}x / "
              f"{r['gymnasium'][1] / step:5.2f}x")
    print(f"   fast, compiled / fast, pygame: {r['fast, pygame'][0] / r['fast, compiled'][0]:.2f}x (call), "
          f"{r['fast, pygame'][1] / r['fast, compiled'][1]:.2f}x (step); approx: "
          f"{r['approx, pygame'][0] / r['approx, compiled'][0]:.2f}x (call)", flush=True)

    with tempfile.TemporaryDirectory() as folder:
        models = {n: make_agent(folder, *RENDERERS[n]) for n in ("gymnasium", "fast, pygame", "fast, compiled",
                                                                 "approx, compiled")}
        what = models["gymnasium"][1]
        models = {n: m for n, (m, _) in models.items()}
        sols = solutions(models["fast, compiled"], args.episodes)
        one_env(models["fast, compiled"], sols[:1], 20)  # warm-up
        k = args.envs
        runs = {"one env, gymnasium (K=1)": one_env(models["gymnasium"], sols, args.steps),
                "one env, fast, pygame (K=1)": one_env(models["fast, pygame"], sols, args.steps),
                f"batched, fast, pygame (K={args.base_envs})": batched(models["fast, pygame"], sols, args.steps,
                                                                       args.base_envs),
                f"batched, fast, compiled (K={k})": batched(models["fast, compiled"], sols, args.steps, k),
                f"batched, approx, compiled (K={k})": batched(models["approx, compiled"], sols, args.steps, k)}
        print(f"\n2. full agent ({what}), {args.episodes} episodes capped at {args.steps} steps")
        rate = {}
        for name, (n, cpu, wall) in runs.items():
            rate[name] = n / cpu
            print(f"   {name:<36} {n} steps  {n / cpu:6.1f} steps per CPU s  {n / wall:6.1f} steps/s wall  "
                  f"({1e3 * cpu / n:.2f} CPU ms/step)")
        base, pygame_batched, best = (rate[n] for n in list(rate)[0:1] + list(rate)[2:4])
        print(f"   batched compiled / batched pygame (today's) = {best / pygame_batched:.2f}x CPU (issue 18's goal >= 2.5x); "
              f"batched compiled / one-env gymnasium = {best / base:.2f}x (goal >= 8x); "
              f"batched approx compiled / one-env gymnasium = {list(rate.values())[4] / base:.2f}x", flush=True)

        for name in ("fast, pygame", "fast, compiled"):
            n, cpu, parts = profile(models[name], sols, args.steps, k)
            print(f"\n3. batched path (K={k}, {name}), CPU ms per env step (instrumented run, "
                  f"{1e3 * cpu / n:.2f} ms/step in all)")
            for part, seconds in parts.items():
                print(f"   {part:<48} {1e3 * seconds / n:6.3f} ms  {100 * seconds / cpu:5.1f}%")
        n, cpu, parts = render_parts(models["fast, compiled"], sols, args.steps, k)
        print(f"\n3b. the compiled render's parts (K={k}), CPU ms per env step (instrumented run, "
              f"{1e3 * cpu / n:.2f} ms/step of render)")
        for part, seconds in parts.items():
            print(f"   {part:<52} {1e3 * seconds / n:6.3f} ms  {100 * seconds / cpu:5.1f}%", flush=True)

        print(f"\n4. one CMA-ES generation at paper scale (64 x 16 episodes x 1000 steps = {PAPER_STEPS:,} env steps), "
              "projected from the CPU rates above (1 worker per core)")
        for name, steps_per_cpu_second in ((n, rate[n]) for n in (list(rate)[0], list(rate)[3])):
            hours = [PAPER_STEPS / (steps_per_cpu_second * cores) for cores in (os.cpu_count(), 16, 64)]
            print(f"   {name:<36} {os.cpu_count()} cores {hours[0] / 60:6.1f} min   16 cores {hours[1] / 60:5.1f} min   "
                  f"64 cores {hours[2] / 60:5.1f} min")
        print("   (an evaluation generation, every 25th, adds 64 x 16 more full episodes: twice the time)")
        rnn_path = models["fast, compiled"].cfg.rnn_path
        wall, line = train_generation(folder, rnn_path, args.steps, args.envs)
        projected = 16 * args.steps / (2 * rate[list(rate)[3]])
        print(f"   train.py, 2 workers x 2 solutions x 4 episodes capped at {args.steps} steps, K={args.envs}: "
              f"{wall:.1f} s wall; projected from the batched rate on 2 cores {projected:.1f} s (at most: episodes "
              f"that end early are shorter)\n   {line}")
        if args.sweep:
            sweep(models["fast, compiled"], [int(k) for k in args.sweep.split(",")], args.steps)


if __name__ == "__main__":
    main()
