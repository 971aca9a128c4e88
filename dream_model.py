"""Watch a controller drive inside M's dream, as the original's dream_model.py (visualisation only).

    python dream_model.py log/carracing.cma.16.64.best.json 7      # that controller, seed 7
    python dream_model.py                                          # a random controller, as the original
    python dream_model.py best.json --temperature 1.15 --gif dream.gif

The agent is model.py's Model (the original's dream_model.py was a copy of it): V and M load
--vae_path and --rnn_path, the controller loads the params file. Each step the agent acts on
the current z and M's state, and the dream (dream_env.py) samples the next z from M at
--temperature. The dream starts from a random entry of --initial_z_path and stops at
--max_episode_length steps (or when the dream reports done after --max_frames), as the
original's loop. With a display the frames are shown in a window (x8, as the original);
without one, or with --gif, they are written as a GIF: every 2nd frame at x4 (256x256, 25 fps,
the real env's speed).

With an M that has reward and done heads (rnn_train.py --reward_done 1) the dream is the one
the controller trains in (train.py --env_name carracing_dream): each step's reward is M's
prediction, the dream ends when M predicts done, and the total predicted reward and how the
dream ended are printed.

Fixes of the original (listed in the README): M advances once per dream step, not twice (see
dream_env.py); the `[seed]` argument is used (the original printed it and seeded the dream from
np.random); without one a seed is drawn, used and printed, so any dream can be repeated.
"""
import os
import random

import numpy as np
from tqdm import tqdm

import config
from config import DreamConfig, ModelConfig
from dream_env import CarRacingDream, make_env
from env import has_display
from files import atomic
from files.media import GifWriter
from files.tfjson import load_initial_z
import model as agent_model
from model import (  # noqa: F401 (the original's dream_model.py names: a copy of model.py's)
    EXP_MODE,
    MODE_Z,
    MODE_Z_HIDDEN,
    MODE_ZC,
    MODE_ZCH,
    MODE_ZH,
    clip,
    passthru,
    relu,
    sample,
    sigmoid,
    softmax,
)
from plumbing.cli import checked_seed, run
from plumbing.torch_setup import set_torch_for_acting


def dream(model, env, max_len, record=None, show=False):
    """One dream, as the original's loop: reset, then act on z, draw z, step, until done or
    `max_len` steps (or the user closes the window). `record(frame)` gets each step's 512x512
    frame; `show` puts it in the window. Returns the number of steps (= frames drawn)."""
    z = env.reset()  # also zeroes the agent's M state
    for t in tqdm(range(max_len), desc="dream", unit="frame", dynamic_ncols=True, leave=False):
        action = model.get_action(z)
        if record is not None or show:
            frame = env.render("human" if show else "rgb_array")
            if record is not None:
                record(frame)
        z, _, done, _ = env.step(action)
        if done or env.window_closed:
            break
    return t + 1


def dream_gif(model, path, temperature=DreamConfig.temperature, frames=300, seed=0,
              initial_z_path=DreamConfig.initial_z_path):
    """Write a `frames`-step dream of `model` (a model.Model with V and M loaded) at
    `temperature` from `seed` to the GIF `path` (every 2nd frame, x4); returns its frame count."""
    cfg = DreamConfig(initial_z_path=initial_z_path, temperature=temperature, max_frames=frames)
    env = make_env(model.env_name, model, seed=seed, cfg=cfg)
    atomic.check_writable(os.path.dirname(path) or ".")
    with GifWriter(path, caption=f"dream of M at temperature {temperature:g}") as record:
        steps = dream(model, env, frames, record=record)
    return (steps + 1) // 2


render_mode = True  # the original's global (main's flag); main here shows a window when there is a display


class Model(agent_model.Model):
    """The original's dream_model.Model: model.py's agent whose `make_env` is the dream
    (dream_env.make_env over this agent; `cfg` (ours) is a config.DreamConfig)."""

    def make_env(self, seed=-1, render_mode=False, cfg=None):
        self.render_mode = render_mode
        self.env = make_env(self.env_name, agent=self, seed=seed, render_mode=render_mode, cfg=cfg)


def make_model(load_model=True, cfg=None, env_cfg=None):
    """The original's dream_model.make_model: a dream_model.Model (cfg, env_cfg as model.make_model's)."""
    return Model(load_model=load_model, cfg=cfg, env_cfg=env_cfg)


def simulate(model, train_mode=False, render_mode=True, num_episode=5, seed=-1, max_len=-1):
    """The original's dream loop: per episode reset M and the dream, then act, render ("human" or
    "rgb_array"), step, until done or the step cap (model.cfg.max_episode_length; `max_len` when
    training with max_len > 0). Returns (reward_list, t_list); reward_list stays empty, as the
    original's (the dream has no reward)."""
    reward_list, t_list = [], []
    cap = max_len if train_mode and max_len > 0 else model.cfg.max_episode_length
    if seed >= 0:
        random.seed(seed)
        np.random.seed(seed)
        model.env.seed(seed)
    for _ in range(num_episode):
        model.reset()
        z = model.env.reset()
        for t in range(cap):
            action = model.get_action(z)
            model.env.render("human" if render_mode else "rgb_array")
            z, _, done, _ = model.env.step(action)
            if render_mode:
                print("action", action, "sum.square.z", np.sum(np.square(z)))
            if done:
                break
        t_list.append(t)
    return reward_list, t_list


def main():
    p = config.parser(ModelConfig, DreamConfig,
                      description="Run a controller inside M's dream and show it (window) or write it (GIF).")
    p.add_argument("params", nargs="?", help="controller JSON (best.json or a generation's .json); "
                                             "none = random parameters with stdev rand()*0.01, as the original")
    p.add_argument("seed", nargs="?", type=int, help="seed of the run (random, np.random, the dream); "
                                                     "drawn and printed when not given")
    p.add_argument("--seed", dest="seed_option", type=int, metavar="N", help="the seed, also without a params file")
    p.add_argument("--gif", metavar="PATH", help="write the dream as a GIF here (every 2nd frame, x4: 256x256); "
                                                 "without a display dream.gif is written when not given")
    args = p.parse_args()
    cfg, dream_cfg = config.from_args(args, ModelConfig, DreamConfig)
    set_torch_for_acting(1)

    the_seed = args.seed_option if args.seed_option is not None else args.seed
    if the_seed is None:
        the_seed = int(np.random.randint(10000))
    checked_seed(the_seed)
    print("seed", the_seed)
    random.seed(the_seed)
    np.random.seed(the_seed)
    initial_z = load_initial_z(dream_cfg.initial_z_path)
    show = has_display()
    gif = args.gif or (None if show else "dream.gif")
    if gif:
        atomic.check_writable(os.path.dirname(gif) or ".")

    model = make_model(cfg=cfg)
    if args.params:
        print("filename", args.params)
        model.load_model(args.params)
    else:  # the controller only: the original's dream kept the loaded V and M
        model.set_model_params(model.get_random_model_params(stdev=np.random.rand() * 0.01))
    print("model size", model.param_count)
    env = CarRacingDream(model, initial_z, temperature=dream_cfg.temperature, max_frames=dream_cfg.max_frames)
    env.seed(the_seed)

    if gif:
        with GifWriter(gif, caption=f"dream of M at temperature {dream_cfg.temperature:g}") as record:
            steps = dream(model, env, cfg.max_episode_length, record=record, show=show)
    else:
        steps = dream(model, env, cfg.max_episode_length, show=show)
    env.close()
    print("dream of", steps, "frames at temperature", dream_cfg.temperature)
    if getattr(model.rnn.hps, "reward_done", 0):
        ended = "ended by M's done head" if env.done_by_m else "M's done head did not fire"
        print(f"predicted reward {env.total_reward:.2f} (M's reward head); {ended}")
    if gif:
        print("wrote", gif)


if __name__ == "__main__":
    run(main)
