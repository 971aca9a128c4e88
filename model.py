"""The agent (V + M + a linear controller C), its rollout loop `simulate`, and its evaluation CLI.

As the original's model.py. At each env step the agent
  1. encodes the 64x64 frame with the VAE and SAMPLES z = mu + exp(logvar / 2) * N(0, 1)
     (np.random, as the original; not the mean),
  2. acts on the current LSTM state: a = tanh(W [z, h] + b), then gas = (a1 + 1) / 2 and
     brake = clip(a2, 0, 1),
  3. only then advances M with (z, a).
The controller's flat parameters are [b (3), W (inputs x 3) row-major]; with exp_mode
z_hidden they are [b_hidden (40), W_hidden (32 x 40), b_out (3), W_out (40 x 3)].

    python model.py norender log/carracing.cma.16.64.best.json        # 100 episodes, mean and std
    python model.py render log/carracing.cma.16.64.best.json 7        # 1 episode on seed 7, GIF
    python model.py norender --config smoke                           # random controller
    python model.py norender best.json 7 --envs_per_worker 8          # 8 envs in lockstep (see below)

Fixes of the original (listed in the README): the `[seed]` argument is used (the original
printed it and ignored it); without one a seed is drawn, used and printed, so any run can be
repeated. `render` writes a GIF of the episode (and shows the window when there is a display).

Batched evaluation (`simulate_batch`, option envs_per_worker K > 1, off by default): K envs
step in lockstep with one V encode, one M step and one controller call per step for all of
them; a finished episode leaves the batch and the next queued one takes its env. Solution i
with seed s runs episodes 0..n-1 on the tracks the one-env path would draw (one track
generator seeded with s, reset in episode order), but its z noise comes from a stream of its
own per episode, np.random.default_rng((s, e)), instead of the original's global np.random;
so the result does not depend on K, and differs from `simulate`'s only through that noise.
"""
import dataclasses
import os
import random
from collections import deque

import numpy as np
import torch
from gymnasium.utils import seeding

import atomic
import config
import tfjson
from cli import UserError, run
from config import EnvConfig, EvalConfig, ModelConfig
from env import has_display, make_env
from rnn.rnn import (MODE_Z, MODE_Z_HIDDEN, MODE_ZC, MODE_ZCH, MODE_ZH, MDNRNN, LSTMStateTuple, hps_sample,
                     rnn_init_state, rnn_next_state, rnn_output, rnn_output_size)
from vae.vae import ConvVAE

MODES = {"zch": MODE_ZCH, "zc": MODE_ZC, "z": MODE_Z, "z_hidden": MODE_Z_HIDDEN, "zh": MODE_ZH}
HIDDEN_SIZE = 40  # MODE_Z_HIDDEN's tanh layer (the paper's "z + hidden layer" agent)
NUM_ACTIONS = 3
ONEDNN_MIN_BATCH = 4  # encode batches this large with oneDNN (~0.48 ms a frame at 8), smaller ones with torch's kernels


def param_count(exp_mode="zh"):
    """Number of controller parameters for `exp_mode` (867 for zh), without building V or M."""
    n = rnn_output_size(MODES[exp_mode])
    if MODES[exp_mode] == MODE_Z_HIDDEN:
        return (n + 1) * HIDDEN_SIZE + HIDDEN_SIZE * NUM_ACTIONS + NUM_ACTIONS
    return n * NUM_ACTIONS + NUM_ACTIONS


def make_model(load_model=True, cfg=None, env_cfg=None):
    """The original's make_model: an agent whose V and M load cfg.vae_path / cfg.rnn_path."""
    return Model(load_model=load_model, cfg=cfg or ModelConfig(), env_cfg=env_cfg or EnvConfig())


class Model:
    """The agent of the original's model.py (see the module docstring for its step)."""

    def __init__(self, load_model=True, cfg=None, env_cfg=None):
        self.cfg = cfg or ModelConfig()
        self.env_cfg = env_cfg or EnvConfig()
        self.env_name = self.env_cfg.env_name
        self.exp_mode = MODES[self.cfg.exp_mode]
        # Flush denormals to zero, as TF's CPU kernels do: the original's random V (weights ~1e-6)
        # gives denormal activations, on which CPU convolutions run ~50x slower.
        torch.set_flush_denormal(True)
        self.vae = ConvVAE(batch_size=1, gpu_mode=False, is_training=False, reuse=True).eval()
        self.rnn = MDNRNN(hps_sample).eval()
        self.vae.requires_grad_(False)
        self.rnn.requires_grad_(False)
        if load_model:
            self.vae.load_json(self.cfg.vae_path)
            self.rnn.load_json(self.cfg.rnn_path)
        # Batch-1 encoding is fastest with channels-last weights (the frames are NHWC already)
        # and torch's native kernels rather than oneDNN's (see encode_obs): ~0.8 ms vs ~2.4 ms.
        self.vae.to(memory_format=torch.channels_last)
        self.state = rnn_init_state(self.rnn)
        self.input_size = rnn_output_size(self.exp_mode)
        self.z_size = 32
        self.param_count = param_count(self.cfg.exp_mode)
        self.set_model_params(np.random.randn(self.param_count))  # the original also starts from randn
        self.render_mode = False
        self.env = None
        self.envs = []  # simulate_batch's lockstep envs, made by make_envs

    def make_env(self, seed=-1, render_mode=False, full_episode=False):
        self.render_mode = render_mode
        options = {k: v for k, v in dataclasses.asdict(self.env_cfg).items() if k != "env_name"}  # renderer, ...
        self.env = make_env(self.env_name, seed=seed, render_mode=render_mode, full_episode=full_episode, **options)

    def make_envs(self, count):
        """At least `count` headless envs for `simulate_batch` (made once, reused)."""
        options = {k: v for k, v in dataclasses.asdict(self.env_cfg).items() if k != "env_name"}
        while len(self.envs) < count:
            self.envs.append(make_env(self.env_name, **options))

    def reset(self):
        """Zero LSTM state (start of an episode)."""
        self.state = rnn_init_state(self.rnn)

    def encode_obs(self, obs):
        """Frame (64, 64, 3) uint8 -> (z, mu, logvar); z is SAMPLED with np.random."""
        mu, logvar = self.encode_frames(np.asarray(obs)[None])
        mu, logvar = mu[0], logvar[0]
        z = mu + np.exp(logvar / 2.0) * np.random.randn(*logvar.shape)
        return z, mu, logvar

    def encode_frames(self, frames):
        """Frames (N, 64, 64, 3) uint8 -> (mu, logvar), float32 (N, z_size) each, in one torch call."""
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(torch.float32).div_(255.0)
        onednn = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = len(frames) >= ONEDNN_MIN_BATCH  # torch's own: ~3x faster at batch 1
        try:
            with torch.inference_mode():
                mu, logvar = self.vae.encode_tensor(x)
        finally:
            torch.backends.mkldnn.enabled = onednn
        return mu.numpy(), logvar.numpy()

    def get_action(self, z):
        """Act on z and the CURRENT state, then advance M with (z, action)."""
        h = rnn_output(self.state, z, self.exp_mode)
        if self.exp_mode == MODE_Z_HIDDEN:
            h = np.tanh(h @ self.weight_hidden + self.bias_hidden)
            action = np.tanh(h @ self.weight_output + self.bias_output)
        else:
            action = np.tanh(h @ self.weight + self.bias)
        action[1] = (action[1] + 1.0) / 2.0
        action[2] = min(max(action[2], 0.0), 1.0)
        self.state = rnn_next_state(self.rnn, z, action, self.state)
        return action

    def act_batch(self, z, state, layers):
        """`get_action` for a batch: z (K, 32), state LSTMStateTuple of (K, rnn_size) tensors, and
        `layers` the stacked `controller_layers` of the K controllers. Returns (actions (K, 3),
        next state); one numpy controller call and one torch LSTM step for the whole batch."""
        c, h = state.c.numpy(), state.h.numpy()
        x = {MODE_ZCH: lambda: np.concatenate([z, c, h], 1), MODE_ZC: lambda: np.concatenate([z, c], 1),
             MODE_ZH: lambda: np.concatenate([z, h], 1)}.get(self.exp_mode, lambda: z)()
        for weight, bias in layers:
            x = np.tanh(np.matmul(x[:, None, :], weight)[:, 0] + bias)
        x[:, 1] = (x[:, 1] + 1.0) / 2.0
        x[:, 2] = np.clip(x[:, 2], 0.0, 1.0)
        with torch.inference_mode():
            _, state = self.rnn.step(torch.from_numpy(np.concatenate([z, x], 1).astype(np.float32)), state)
        return x, state

    def controller_layers(self, model_params):
        """[(weight, bias), ...] of the controller with flat parameters `model_params`, input to output."""
        params = np.asarray(model_params, dtype=np.float64)
        if params.shape != (self.param_count,):
            raise ValueError(f"expected {self.param_count} controller parameters, got shape {params.shape}")
        if self.exp_mode == MODE_Z_HIDDEN:
            cut = (self.input_size + 1) * HIDDEN_SIZE
            return [(params[HIDDEN_SIZE:cut].reshape(self.input_size, HIDDEN_SIZE), params[:HIDDEN_SIZE]),
                    (params[cut + NUM_ACTIONS:].reshape(HIDDEN_SIZE, NUM_ACTIONS), params[cut:cut + NUM_ACTIONS])]
        return [(params[NUM_ACTIONS:].reshape(self.input_size, NUM_ACTIONS), params[:NUM_ACTIONS])]

    def set_model_params(self, model_params):
        layers = self.controller_layers(model_params)
        self.model_params = np.asarray(model_params, dtype=np.float64)
        if self.exp_mode == MODE_Z_HIDDEN:
            (self.weight_hidden, self.bias_hidden), (self.weight_output, self.bias_output) = layers
        else:
            ((self.weight, self.bias),) = layers

    def load_model(self, filename):
        """Load controller parameters from `best.json` ([params, score]) or a generation's
        `.json` ([params]): data[0] is the flat list either way."""
        data = tfjson.read(filename, "a controller JSON file")
        try:
            params = np.array(data[0], dtype=np.float64)
        except (TypeError, ValueError, IndexError, KeyError):
            raise UserError(f"{filename}: expected [params, ...] with a flat list of numbers first") from None
        if params.shape != (self.param_count,):
            raise UserError(f"{filename}: {params.size} parameters, but exp_mode {self.cfg.exp_mode} needs "
                            f"{self.param_count}")
        print(f"loading file {filename}")
        self.data = data
        self.set_model_params(params)

    def get_random_model_params(self, stdev=0.1):
        return np.random.standard_cauchy(self.param_count) * stdev

    def init_random_model_params(self, stdev=0.1):
        """Cauchy-random controller, VAE and MDN-RNN, as the original (V and M get cauchy * stdev
        in JSON scale, i.e. weights of cauchy * stdev / 10000)."""
        self.set_model_params(self.get_random_model_params(stdev))
        self.vae.set_model_params(self.vae.get_random_model_params(stdev))
        with torch.no_grad():
            for p in self.rnn.parameters():
                p.copy_(torch.from_numpy(np.random.standard_cauchy(tuple(p.shape)) * stdev / 10000.0))


def simulate(model, train_mode=False, render_mode=True, num_episode=5, seed=-1, max_len=-1, record=None,
             no_reward_steps=0):
    """Run `num_episode` episodes; returns (reward_list, t_list), t = last 0-based step index.

    As the original: a seed >= 0 seeds `random`, `np.random` and the env ONCE before all
    episodes (consecutive tracks follow); each episode resets M's state and the env; the step
    cap is cfg.max_episode_length, or `max_len` when training with max_len > 0; after the loop
    one more encode + act runs (it consumed np.random draws in the original, kept for replay
    equality). `record`, if given, is called with each step's full-size RGB image (for GIFs).
    With train_mode and `no_reward_steps` N > 0 (TrainConfig.no_reward_steps, off in the
    original) an episode also ends after N consecutive steps without a positive reward.
    """
    reward_list, t_list = [], []
    max_episode_length = model.cfg.max_episode_length
    if train_mode and max_len > 0:
        max_episode_length = max_len
    patience = no_reward_steps if train_mode else 0
    if seed >= 0:
        random.seed(seed)
        np.random.seed(seed)
        model.env.seed(seed)
    for episode in range(num_episode):
        model.reset()
        obs = model.env.reset()
        total_reward, since_reward = 0.0, 0
        np.random.randint(2**31 - 1)  # the original drew a recording file name here
        for t in range(max_episode_length):
            z, _, _ = model.encode_obs(obs)
            action = model.get_action(z)
            obs, reward, done, _ = model.env.step(action)
            if record is not None:
                record(_full_frame(model.env))
            total_reward += reward
            since_reward = 0 if reward > 0 else since_reward + 1
            if done or since_reward == patience > 0:
                break
        z, _, _ = model.encode_obs(obs)
        model.get_action(z)
        if render_mode:
            print("total reward", total_reward, "timesteps", t)
        reward_list.append(total_reward)
        t_list.append(t)
    return reward_list, t_list


class _Episode:
    """One episode of `simulate_batch` running on an env."""

    def __init__(self, env, job, episode, noise, obs):
        self.env, self.job, self.episode, self.noise, self.obs = env, job, episode, noise, obs
        self.t, self.total_reward, self.since_reward = 0, 0.0, 0


def simulate_batch(model, solutions, seeds, num_episode=1, num_envs=8, train_mode=False, max_len=-1, no_reward_steps=0):
    """Run `num_episode` episodes of each controller in `solutions` (flat parameter arrays), K =
    `num_envs` envs at a time in lockstep; returns [(reward_list, t_list)] per solution, as
    `simulate` would for (solution, seed), apart from the z noise.

    Solution i's episodes reset, in episode order, from one track generator seeded with
    seeds[i] (Gymnasium's np_random, shared by whichever envs run them): episode e gets the
    track of the one-env path's e-th reset after env.seed(seeds[i]). Episode e's z noise is
    np.random.default_rng((seeds[i], e)); the global np.random and `random` are not touched.
    Per step: one V encode of the (K, 64, 64, 3) frames, one controller call and one M step.
    An episode that ends (done, the step cap or `no_reward_steps` as in `simulate`) leaves the
    batch, and the next queued episode starts on its env.
    """
    cap = max_len if train_mode and max_len > 0 else model.cfg.max_episode_length
    patience = no_reward_steps if train_mode else 0
    model.make_envs(num_envs)
    free = list(model.envs[:num_envs])
    tracks = [seeding.np_random(int(seed))[0] for seed in seeds]
    layers = [model.controller_layers(p) for p in solutions]
    queue = deque((job, e) for job in range(len(solutions)) for e in range(num_episode))
    rewards = [[0.0] * num_episode for _ in solutions]
    steps = [[0] * num_episode for _ in solutions]
    running = []
    state = model.rnn.initial_state(0)
    while queue or running:
        if queue and free:
            while queue and free:
                job, e = queue.popleft()
                env = free.pop(0)
                env.np_random = tracks[job]
                running.append(_Episode(env, job, e, np.random.default_rng((int(seeds[job]), e)), env.reset()))
            fresh = model.rnn.initial_state(len(running) - len(state.c))
            state = LSTMStateTuple(torch.cat([state.c, fresh.c]), torch.cat([state.h, fresh.h]))
            batch_layers = [(np.stack([layers[r.job][k][0] for r in running]), np.stack([layers[r.job][k][1] for r in running]))
                            for k in range(len(layers[0]))]
        mu, logvar = model.encode_frames(np.stack([r.obs for r in running]))
        z = mu + np.exp(logvar / 2.0) * np.stack([r.noise.standard_normal(mu.shape[1]) for r in running])
        actions, state = model.act_batch(z, state, batch_layers)
        keep = []
        for k, (r, action) in enumerate(zip(running, actions)):
            r.obs, reward, done, _ = r.env.step(action)
            r.total_reward += reward
            r.since_reward = 0 if reward > 0 else r.since_reward + 1
            if done or r.t == cap - 1 or r.since_reward == patience > 0:
                rewards[r.job][r.episode], steps[r.job][r.episode] = r.total_reward, r.t
                free.append(r.env)
            else:
                r.t += 1
                keep.append(k)
        if len(keep) < len(running):
            running = [running[k] for k in keep]
            state = LSTMStateTuple(state.c[keep], state.h[keep])
            batch_layers = [(w[keep], b[keep]) for w, b in batch_layers]
    return list(zip(rewards, steps))


def _full_frame(env):
    """The env's full-size (400 x 600) RGB image of the current state, as in its window."""
    return env._render("rgb_array")


class GifWriter:
    """Streams every 2nd frame at half size (25 fps of the 50 fps env) into a GIF written beside
    `path` and renamed over it when the episode is complete."""

    def __init__(self, path):
        self.path, self.tmp, self.count = path, path + ".tmp.gif", 0

    def __enter__(self):
        import imageio.v2 as imageio

        self.writer = imageio.get_writer(self.tmp, mode="I", duration=40, loop=0)
        return self

    def __call__(self, frame):
        if self.count % 2 == 0:
            self.writer.append_data(frame[::2, ::2])
        self.count += 1

    def __exit__(self, kind, *_):
        self.writer.close()
        if kind is None:
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)


def main():
    p = config.parser(ModelConfig, EvalConfig, EnvConfig,
                      description="Evaluate a controller: `norender` runs num_episode episodes and prints their mean "
                                  "and (population) std; `render` runs one episode and writes a GIF.")
    p.add_argument("mode", choices=("render", "norender"), help="render: 1 episode with a GIF (and the window when "
                                                                "there is a display); norender: num_episode episodes")
    p.add_argument("params", nargs="?", help="controller JSON (best.json or a generation's .json); "
                                             "none = random parameters with stdev rand()*0.01, as the original")
    p.add_argument("seed", nargs="?", type=int, help="seed of the run (random, np.random, env tracks); "
                                                     "drawn and printed when not given")
    p.add_argument("--seed", dest="seed_option", type=int, metavar="N", help="the seed, also without a params file")
    args = p.parse_args()
    cfg, eval_cfg, env_cfg = config.from_args(args, ModelConfig, EvalConfig, EnvConfig)
    if args.seed_option is not None:
        args.seed = args.seed_option
    render_mode = args.mode == "render"
    num_episode = 1 if render_mode and "num_episode" not in vars(args) else eval_cfg.num_episode
    torch.set_num_threads(1)

    the_seed = args.seed if args.seed is not None else int(np.random.randint(10000))
    if the_seed < 0:
        raise UserError(f"seed {the_seed}: must be >= 0")
    random.seed(the_seed)
    np.random.seed(the_seed)
    if args.params:
        print("filename", args.params)
        model = make_model(cfg=cfg, env_cfg=env_cfg)
        model.load_model(args.params)
    else:
        model = make_model(load_model=False, cfg=cfg, env_cfg=env_cfg)
        model.init_random_model_params(stdev=np.random.rand() * 0.01)
    print("model size", model.param_count)
    show = render_mode and has_display()
    if render_mode or cfg.envs_per_worker == 1:
        model.make_env(seed=the_seed, render_mode=show)
    if render_mode:
        atomic.check_writable(os.path.dirname(eval_cfg.gif_path) or ".")

    reward_list = []
    if not render_mode and cfg.envs_per_worker > 1:  # all episodes from one simulate_batch call (module doc)
        ((reward_list, _),) = simulate_batch(model, [model.model_params], [the_seed], num_episode=num_episode,
                                              num_envs=cfg.envs_per_worker)
        for reward in reward_list:
            print(reward)
    else:
        for i in range(num_episode):
            if render_mode:
                gif = eval_cfg.gif_path if num_episode == 1 else f"{os.path.splitext(eval_cfg.gif_path)[0]}.{i}.gif"
                with GifWriter(gif) as record:
                    reward, steps_taken = simulate(model, train_mode=False, render_mode=True, num_episode=1, record=record)
                print("terminal reward", reward, "average steps taken", np.mean(steps_taken) + 1)
                print("wrote", gif)
            else:
                reward, steps_taken = simulate(model, train_mode=False, render_mode=False, num_episode=1)
                print(reward[0])
            reward_list.append(reward[0])
    print("seed", the_seed, "average_reward", np.mean(reward_list), "stdev", np.std(reward_list))


if __name__ == "__main__":
    run(main)
