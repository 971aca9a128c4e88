"""Benchmark the agent's rollouts and train.py's parallelism.

    .venv/bin/python bench/rollout.py [--steps 1000] [--episodes 2]

1. Env steps/s of `model.simulate` with the full agent (VAE encode + controller + LSTM step
   per env step) against a bare Gymnasium CarRacing-v3 loop, in the same process, on the
   same number of steps. Goal: agent / bare >= 0.85 (the agent's work is small next to
   Gymnasium's rendering). Also against env.py alone, which isolates the agent's own cost
   (env.py's renderer may be faster than Gymnasium's). V is a freshly initialised ConvVAE (the original's vae.json is not
   public); M and C are the original's rnn.json and best.json when ../shared/tf_models exists.
2. One train.py generation with 2 workers (population 4, 1 episode of --steps each) under mpiexec: its
   wall time against the CPU time of the same 4 episodes run one after another here. With 2
   workers that each have a core and a master that sleeps while it waits, the ratio is ~0.5.
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

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from config import ModelConfig  # noqa: E402
from env import make_env  # noqa: E402
from model import Model, simulate  # noqa: E402
from rnn.rnn import MDNRNN, hps_sample  # noqa: E402
from vae.vae import ConvVAE  # noqa: E402

TF_MODELS = REPO.parent / "shared" / "tf_models"


def bare_loop(steps, episodes):
    env = gym.make("CarRacing-v3")
    action = np.array([0.0, 0.3, 0.0], dtype=np.float32)
    start, cpu = time.perf_counter(), time.process_time()
    for episode in range(episodes):
        env.reset(seed=episode)
        for _ in range(steps):
            env.step(action)
    n = episodes * steps
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


def env_loop(steps, episodes):
    """Our env.py (the original's API, frame processing and the renderer env.py uses), no agent."""
    env = make_env()
    action = np.array([0.0, 0.3, 0.0])
    start, cpu = time.perf_counter(), time.process_time()
    for episode in range(episodes):
        env.seed(episode)
        env.reset()
        for _ in range(steps):
            env.step(action)
    n = episodes * steps
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


def agent_loop(model, steps, episodes):
    model.cfg.max_episode_length = steps
    start, cpu = time.perf_counter(), time.process_time()
    _, t_list = simulate(model, train_mode=False, render_mode=False, num_episode=episodes, seed=0)
    n = sum(t + 1 for t in t_list)
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu), t_list


def make_agent(folder):
    """A full agent; returns (model, description of its weights)."""
    vae_path, rnn_path = os.path.join(folder, "vae.json"), os.path.join(folder, "rnn.json")
    ConvVAE().save_json(vae_path)
    if (TF_MODELS / "rnn" / "rnn.json").exists():
        rnn_path, what = str(TF_MODELS / "rnn" / "rnn.json"), "original rnn.json + best.json, random V"
    else:
        MDNRNN(hps_sample).save_json(rnn_path)
        what = "random V, M and C"
    model = Model(cfg=ModelConfig(vae_path=vae_path, rnn_path=rnn_path))
    best = TF_MODELS / "log" / "carracing.cma.16.64.best.json"
    if best.exists():
        model.load_model(str(best))
    else:
        model.set_model_params(np.random.default_rng(0).normal(size=model.param_count) * 0.1)
    model.make_env()
    return model, what


def train_generation(folder, rnn_path, steps):
    """(wall seconds of generation 1 as train.py prints it, CPU seconds of the same episodes run serially)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [str(Path(sys.executable).parent / "mpiexec"), "-n", "3", sys.executable, "-W", "ignore",
           str(REPO / "train.py"), "--config", "smoke", "--max_generations", "1", "--eval_steps", "1000",
           "--max_episode_length", str(steps), "--vae_path", os.path.join(folder, "vae.json"),
           "--rnn_path", rnn_path, "--log_dir", os.path.join(folder, "log")]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    wall = float(re.search(r"^gen 1 .* ([0-9.]+) s \(master CPU", out, re.M).group(1))
    return wall, out.strip().splitlines()[-1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1000, help="steps per episode")
    p.add_argument("--episodes", type=int, default=2, help="episodes per loop")
    args = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        model, what = make_agent(folder)
        agent_loop(model, 20, 1)  # warm-up
        bare, bare_cpu = bare_loop(args.steps, args.episodes)
        env, env_cpu = env_loop(args.steps, args.episodes)
        agent, agent_cpu, t_list = agent_loop(model, args.steps, args.episodes)
        print(f"bare Gymnasium CarRacing-v3 loop: {bare:.1f} steps/s wall, {bare_cpu:.1f} steps per CPU second")
        print(f"env.py alone (same steps): {env:.1f} steps/s wall, {env_cpu:.1f} steps per CPU second")
        print(f"simulate with the full agent ({what}): {agent:.1f} steps/s wall, {agent_cpu:.1f} steps per CPU "
              f"second, over {[t + 1 for t in t_list]} steps")
        print(f"agent / bare = {agent / bare:.3f} wall, {agent_cpu / bare_cpu:.3f} CPU (goal >= 0.85; the CPU ratio "
              "is the one that survives a busy machine)")
        print(f"agent / env.py alone = {agent / env:.3f} wall, {agent_cpu / env_cpu:.3f} CPU (the agent's own cost)")

        steps = args.steps
        serial_cpu = 0.0
        for seed in range(4):
            model.set_model_params(np.random.default_rng(seed).normal(size=model.param_count) * 0.1)
            model.cfg.max_episode_length = steps
            start = time.process_time()
            simulate(model, train_mode=True, render_mode=False, num_episode=1, seed=seed)
            serial_cpu += time.process_time() - start
        wall, line = train_generation(folder, model.cfg.rnn_path, steps)
        print(f"train.py generation with 2 workers: {line}")
        print(f"its 4 episodes of {steps} steps run serially here: {serial_cpu:.2f} CPU s; generation wall {wall:.2f} s")
        print(f"generation wall / serial CPU = {wall / serial_cpu:.3f} (2 workers at full speed: ~0.5)")


if __name__ == "__main__":
    main()
