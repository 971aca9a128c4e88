"""train.py's env steps per second at the budget presets against the batched rollout's, in one run
on one machine, and where the difference goes.

    .venv/bin/python bench/train.py [--presets small,medium] [--generations 3]

For each preset, with its training renderer, K (envs_per_worker), workers, solutions and episodes,
the shipped V and M, and controllers around the shipped agent (its mean + N(0, 0.1^2), as
train.py --init_from samples them):
1. batched: bench/rollout.py's batched path (simulate_batch, K solutions x 1 episode on K envs:
   one lockstep wave), in num_worker processes at once: the rate train.py could reach.
2. packet: the worker's own step (train.py's evaluate_packet on a worker's packet of
   num_worker_trial solutions x num_episode episodes, queued onto the same K envs), in num_worker
   processes at once: what the packet's shape costs (episodes that end early, the last wave's
   stragglers stepping fewer envs at a time).
3. train.py: --generations generations (no evaluation of the mean) under mpiexec; the rate of
   each after the first (which includes the workers' start), its wall seconds and the master's CPU
   seconds (ask, tell, checkpoint, logs): what the master and MPI cost.
Rates are env steps per wall second over all processes (each a 1-thread process on its own core);
other work on the machine lowers all three, so run it on an idle machine and compare ratios.
"""
import argparse
import dataclasses
import multiprocessing
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

import config  # noqa: E402
from agent.rollout import simulate_batch  # noqa: E402
from config import EnvConfig, ModelConfig, TrainConfig  # noqa: E402
from model import make_model, read_controller_params  # noqa: E402
from plumbing.torch_setup import set_torch_for_acting  # noqa: E402
from train import evaluate_packet, worker_envs  # noqa: E402

AGENT = REPO / "log" / "carracing.cma.1.64.best.json"  # the shipped controller


def presets(name):
    return config.preset(TrainConfig, name), config.preset(ModelConfig, name), config.preset(EnvConfig, name)


def controllers(n, model, seed):
    mean = read_controller_params(str(AGENT), model.param_count, model.cfg.exp_mode)
    return [mean + np.random.default_rng(seed * 1000 + i).normal(0, 0.1, model.param_count) for i in range(n)]


def one_process(args):
    """(env steps, wall s) of one process: `what` = batched (K x 1 episode) or packet."""
    name, what, rank = args
    cfg, model_cfg, env_cfg = presets(name)
    cfg = dataclasses.replace(cfg, num_episode=1) if what == "batched" else cfg
    set_torch_for_acting(model_cfg.envs_per_worker)
    model = make_model(cfg=dataclasses.replace(model_cfg, vae_path=str(REPO / "vae" / "vae.json"),
                                               rnn_path=str(REPO / "rnn" / "rnn.json")), env_cfg=env_cfg)
    envs = worker_envs(cfg, model_cfg, env_cfg)  # envs[1]: the training renderer
    n = model_cfg.envs_per_worker if what == "batched" else cfg.num_worker_trial
    sols = controllers(n, model, rank)
    seeds = [10_000 * rank + j for j in range(n)]
    began = time.perf_counter()
    if what == "batched":  # bench/rollout.py's batched path
        results = simulate_batch(model, envs[1], sols, seeds, num_episode=1, train_mode=True)
    else:
        results = evaluate_packet(cfg, model, envs, [(rank + 1, j, seeds[j], 1, -1, sols[j]) for j in range(n)])
    wall = time.perf_counter() - began
    return sum(len(t_list) + sum(t_list) for _, t_list in results), wall


def concurrent(name, what, workers):
    """Env steps per wall second of `workers` processes at once (the slowest one's wall)."""
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        runs = pool.map(one_process, [(name, what, r) for r in range(workers)])
    return sum(n for n, _ in runs) / max(w for _, w in runs)


def train_rates(name, generations):
    """[(env steps/s, wall s, master CPU s)] of train.py's generations after the first."""
    with tempfile.TemporaryDirectory() as folder:
        cmd = [sys.executable, "-W", "ignore", str(REPO / "train.py"), "--config", name,
               "--max_generations", str(generations), "--eval_steps", "100000", "--init_from", str(AGENT),
               "--vae_path", str(REPO / "vae" / "vae.json"), "--rnn_path", str(REPO / "rnn" / "rnn.json"),
               "--log_dir", os.path.join(folder, "log")]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=folder,
                             env=dict(os.environ, OMP_NUM_THREADS="1")).stdout
    lines = re.findall(r"^gen (\d+) .* ([0-9.]+) env steps/s +([0-9.]+) s \(master CPU ([0-9.]+) s\)", out, re.M)
    return [(float(r), float(s), float(c)) for g, r, s, c in lines if int(g) > 1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="small,medium", help="comma-separated presets to measure")
    p.add_argument("--generations", type=int, default=3, help="train.py generations per preset (the first is "
                                                                "not counted)")
    args = p.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    for name in args.presets.split(","):
        cfg, model_cfg, env_cfg = presets(name)
        print(f"\n{name}: {cfg.num_worker} workers x {cfg.num_worker_trial} solutions x {cfg.num_episode} episode(s), "
              f"K = {model_cfg.envs_per_worker}, training renderer {cfg.train_renderer or env_cfg.renderer}", flush=True)
        batched = concurrent(name, "batched", cfg.num_worker)
        print(f"   1. batched (K x 1 episode, {cfg.num_worker} processes)   {batched:7.0f} env steps/s", flush=True)
        packet = concurrent(name, "packet", cfg.num_worker)
        print(f"   2. a worker's packet ({cfg.num_worker} processes)          {packet:7.0f} env steps/s  "
              f"{packet / batched:.3f} of 1", flush=True)
        gens = train_rates(name, args.generations)
        rate = float(np.mean([r for r, _, _ in gens]))
        print(f"   3. train.py, generations 2-{args.generations}                {rate:7.0f} env steps/s  "
              f"{rate / batched:.3f} of 1, {rate / packet:.3f} of 2; per generation "
              + ", ".join(f"{s:.1f} s wall (master CPU {c:.2f} s)" for _, s, c in gens), flush=True)


if __name__ == "__main__":
    main()
