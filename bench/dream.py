"""Dream steps per CPU-second (train.py --env_name carracing_dream's training episodes), and one
CMA-ES generation of the original's size in the dream.

    python bench/dream.py                         # K = 1, 16, 64, 256, 1024; then the generation
    python bench/dream.py --sizes 1,64 --no_generation

1. For each K: K controllers (random, exp_mode zh) each driving one dream of agent.dream_rollout.
   simulate_dreams for --steps steps (K = 1: --steps / 10), one thread, as a train.py worker;
   dream steps (one dream advancing once: controller, LSTM, mixture sample, heads) per CPU-second.
2. The generation: 64 solutions x 16 episodes of 1000 dream steps, split as train.py splits
   it over --workers processes (each one packet of 64 / workers solutions x 16 episodes, one
   batched dream), run at once; wall seconds (goal: at most 30 s on 2 cores) and CPU seconds.
M is a random full-size M (256 units) with reward and done heads whose done never fires, so
every dream runs its full length (the slowest case: dreams that end leave the batch).
"""
import argparse
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from agent.dream_rollout import simulate_dreams
from dream_env import CarRacingDreamBatch
from model import Model
from plumbing.torch_setup import set_torch_for_acting
from rnn.rnn import MDNRNN, hps_sample


def agent_and_dream(K):
    set_torch_for_acting(K)
    torch.manual_seed(0)
    model = Model(load_model=False)
    model.rnn = MDNRNN(hps_sample._replace(reward_done=1))
    with torch.no_grad():
        model.rnn.head_w[:, 0], model.rnn.head_b[0] = 0.0, -100.0  # never done
    rng = np.random.default_rng(0)
    initial_z = [(rng.normal(size=32), rng.normal(-3, 0.5, 32)) for _ in range(100)]
    return model, CarRacingDreamBatch(model.rnn, initial_z, temperature=1.25, max_frames=10**6)


def steps_per_cpu_second(K, steps):
    model, dream = agent_and_dream(K)
    solutions = np.random.default_rng(1).normal(0, 0.1, (K, model.param_count))
    began = time.process_time()
    simulate_dreams(model, dream, solutions, range(K), num_episode=1, max_len=steps)
    return K * steps / (time.process_time() - began)


def packet(solutions, episodes, steps):
    """One worker's packet; returns its (wall, CPU) seconds."""
    model, dream = agent_and_dream(solutions * episodes)
    params = np.random.default_rng(solutions).normal(0, 0.1, (solutions, model.param_count))
    wall, cpu = time.time(), time.process_time()
    simulate_dreams(model, dream, params, range(solutions), num_episode=episodes, max_len=steps)
    return time.time() - wall, time.process_time() - cpu


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1,16,64,256,1024", help="comma-separated K (dreams in one batch)")
    p.add_argument("--steps", type=int, default=200, help="dream steps per measurement (K = 1: a tenth)")
    p.add_argument("--workers", type=int, default=2, help="processes of the generation (train.py -n)")
    p.add_argument("--no_generation", action="store_true", help="skip the generation")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {multiprocessing.cpu_count()} CPUs")
    for K in map(int, args.sizes.split(",")):
        rate = steps_per_cpu_second(K, max(args.steps // 10, 1) if K == 1 else args.steps)
        print(f"K = {K:5d}: {rate:9.0f} dream steps per CPU-second ({1e6 / rate:7.1f} us per dream step)", flush=True)
    if args.no_generation:
        return
    solutions = 64 // args.workers
    began = time.time()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        results = pool.starmap(packet, [(solutions, 16, 1000)] * args.workers)
    wall = time.time() - began
    print(f"generation of 64 x 16 dreams of 1000 steps on {args.workers} processes ({solutions} x 16 = "
          f"{solutions * 16} dreams each): {wall:.1f} s wall (packets {', '.join(f'{w:.1f}' for w, _ in results)} s), "
          f"{sum(c for _, c in results):.1f} CPU-seconds; goal <= 30 s")


if __name__ == "__main__":
    main()
