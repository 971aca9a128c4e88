"""The agent (V + M + the controller C), its rollout loop `simulate`, and its evaluation CLI.

As the original's model.py. At each env step the agent
  1. encodes the 64x64 frame with the VAE and SAMPLES z = mu + exp(logvar / 2) * N(0, 1)
     (np.random, as the original; not the mean),
  2. acts on the current LSTM state: a = tanh(W [z, h] + b), then gas = (a1 + 1) / 2 and
     brake = clip(a2, 0, 1) (controller.py),
  3. only then advances M with (z, a).

    python model.py norender log/carracing.cma.16.64.best.json        # 100 episodes, mean and std
    python model.py render log/carracing.cma.16.64.best.json 7        # 1 episode on seed 7, GIF
    python model.py norender --config smoke                           # random controller
    python model.py norender best.json 7 --envs_per_worker 8          # 8 envs in lockstep (agent/rollout.py)

Fixes of the original (listed in the README): the `[seed]` argument is used (the original
printed it and ignored it); without one a seed is drawn, used and printed, so any run can be
repeated. `render` writes a GIF of the episode (and shows the window when there is a display).
"""
import os
import random

import numpy as np
import torch

import config
from agent import controller
from agent.rollout import OneEnv, rollout, simulate_batch, step_cap
from config import EnvConfig, EvalConfig, ModelConfig
from env import env_from_config, has_display
from files import atomic, tfjson
from files.media import GifWriter
from plumbing.cli import UserError, checked_seed, run
from plumbing.torch_setup import set_torch_for_acting
from rnn.rnn import (
    MDNRNN,
    MODE_Z,
    MODE_Z_HIDDEN,
    MODE_ZC,
    MODE_ZCH,
    MODE_ZH,
    hps_sample,
    rnn_init_state,
    rnn_next_state,
    rnn_output,
    rnn_output_size,
)
from vae.vae import ConvVAE

CONTROLLER_MAX_BYTES = 1 << 24  # a controller JSON (best.json, a generation's .json): ~500,000 parameters
MODES = {"zch": MODE_ZCH, "zc": MODE_ZC, "z": MODE_Z, "z_hidden": MODE_Z_HIDDEN, "zh": MODE_ZH}
EXP_MODE = MODES[ModelConfig.exp_mode]  # the original's global: the mode of a Model built without a cfg
render_mode = True  # the original's global (main's render flag); main here takes `render` / `norender`


# the original's helper functions, kept for scripts that import them (the controller is agent/controller.py)
def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def relu(x):
    return np.maximum(x, 0)


def clip(x, lo=0.0, hi=1.0):
    return np.minimum(np.maximum(x, lo), hi)


def passthru(x):
    return x


def softmax(x):
    e_x = np.exp(x - np.max(x))
    return e_x / e_x.sum(axis=0)


def sample(p):
    """Index drawn from the probabilities `p` (one np.random.multinomial draw)."""
    return np.argmax(np.random.multinomial(1, p))


def controller_size(cfg, hps=hps_sample):
    """Flat parameters of the controller of agent config `cfg` on an M of sizes `hps` (867 for the
    original's zh), without building V or M; the one count the master, the workers and the files
    agree on."""
    hidden = cfg.controller_hidden if cfg.exp_mode == "z_hidden" else 0
    return controller.num_params(rnn_output_size(MODES[cfg.exp_mode], hps), hidden)


def read_controller_params(filename, count, exp_mode):
    """The flat parameters of a controller JSON file: data[0] of `best.json` ([params, score]) or
    of a generation's `.json` ([params]), checked to hold the `count` that `exp_mode` needs."""
    return controller_params_of(tfjson.read(filename, "a controller JSON file", CONTROLLER_MAX_BYTES), filename, count,
                                exp_mode)


def controller_params_of(data, filename, count, exp_mode):
    """`read_controller_params` of the JSON `data` already read from `filename`."""
    if not isinstance(data, list) or not data or not isinstance(data[0], list):
        raise UserError(f"{filename}: expected [params, ...] with a flat list of numbers first")
    params = tfjson.numbers(filename, data[0], "its parameter list")
    if params.shape != (count,):
        raise UserError(f"{filename}: {params.size} parameters, but exp_mode {exp_mode} needs {count}")
    return params


def make_model(load_model=True, cfg=None, env_cfg=None):
    """The original's make_model: an agent whose V and M load cfg.vae_path / cfg.rnn_path."""
    return Model(load_model=load_model, cfg=cfg, env_cfg=env_cfg)


class Model:
    """The agent of the original's model.py (see the module docstring for its step).

    The controller's parameters are the original's attributes, `weight` (input_size, 3) and `bias`
    (3,), or with z_hidden `weight_hidden`, `bias_hidden`, `weight_output`, `bias_output`:
    `get_action` reads them at every step, so setting them changes the agent. `cfg` (config.
    ModelConfig; default: EXP_MODE's mode) and `env_cfg` (config.EnvConfig) are ours."""

    def __init__(self, load_model=True, cfg=None, env_cfg=None):
        self.cfg = cfg or ModelConfig(exp_mode={v: k for k, v in MODES.items()}[EXP_MODE])
        self.env_cfg = env_cfg or EnvConfig()
        self.env_name = self.env_cfg.env_name
        self.exp_mode = MODES[self.cfg.exp_mode]
        if load_model:  # each network as large as its file says (the --z_size, --rnn_size it was trained with)
            self.cfg.check_weight_files()
            self.vae = ConvVAE.from_json(self.cfg.vae_path, batch_size=1, is_training=False, reuse=True)
            self.rnn = MDNRNN.from_json(self.cfg.rnn_path)
            if self.rnn.hps.output_seq_width != self.vae.z_size:
                raise UserError(f"{self.cfg.rnn_path}: an MDN-RNN of z width {self.rnn.hps.output_seq_width}, but "
                                f"{self.cfg.vae_path} has z_size {self.vae.z_size} (train them together)")
        else:
            self.vae = ConvVAE(batch_size=1, is_training=False, reuse=True)
            self.rnn = MDNRNN(hps_sample)
        self.vae.eval().requires_grad_(False)
        self.rnn.eval().requires_grad_(False)
        # the frames are NHWC already: channels-last weights make the batch-1 encode fastest
        self.vae.to(memory_format=torch.channels_last)
        self.state = rnn_init_state(self.rnn)
        self.rnn_mode = True  # the original's (unused) flag
        self.input_size = rnn_output_size(self.exp_mode, self.rnn.hps)
        self.z_size = self.vae.z_size
        self.param_count = controller_size(self.cfg, self.rnn.hps)
        # the original's initial controller: randn, drawn in its order (weights before biases)
        if self.exp_mode == MODE_Z_HIDDEN:
            self.hidden_size = self.cfg.controller_hidden
            self.weight_hidden = np.random.randn(self.input_size, self.hidden_size)
            self.bias_hidden = np.random.randn(self.hidden_size)
            self.weight_output = np.random.randn(self.hidden_size, controller.NUM_ACTIONS)
            self.bias_output = np.random.randn(controller.NUM_ACTIONS)
        else:
            self.weight = np.random.randn(self.input_size, controller.NUM_ACTIONS)
            self.bias = np.random.randn(controller.NUM_ACTIONS)
        self.render_mode = False
        self.env = None

    def make_env(self, seed=-1, render_mode=False, full_episode=False):
        self.render_mode = render_mode
        self.env = env_from_config(self.env_cfg, seed=seed, render_mode=render_mode, full_episode=full_episode)

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
        with torch.inference_mode():
            mu, logvar = self.vae.encode_tensor(x)
        return mu.numpy(), logvar.numpy()

    def get_action(self, z):
        """Act on z and the CURRENT state with the controller's attributes, then advance M with (z, action)."""
        action = controller.act(rnn_output(self.state, z, self.exp_mode), self.layers())
        self.state = rnn_next_state(self.rnn, z, action, self.state)
        return action

    def layers(self):
        """[(weight, bias), ...] of the controller's attributes, input to output."""
        if self.exp_mode == MODE_Z_HIDDEN:
            return [(self.weight_hidden, self.bias_hidden), (self.weight_output, self.bias_output)]
        return [(self.weight, self.bias)]

    @property
    def model_params(self):
        """The flat parameters of the controller's attributes (what set_model_params takes)."""
        return controller.flat(self.layers())

    def controller_layers(self, model_params):
        """[(weight, bias), ...] of the controller with flat parameters `model_params`, input to output."""
        hidden = self.hidden_size if self.exp_mode == MODE_Z_HIDDEN else 0
        return controller.layers(model_params, self.input_size, hidden)

    def set_model_params(self, model_params):
        """Set the controller's attributes from flat parameters, laid out as the original's."""
        if self.exp_mode == MODE_Z_HIDDEN:
            (self.weight_hidden, self.bias_hidden), (self.weight_output, self.bias_output) = \
                self.controller_layers(model_params)
        else:
            ((self.weight, self.bias),) = self.controller_layers(model_params)

    def load_model(self, filename):
        """Load controller parameters from `best.json` ([params, score]) or a generation's
        `.json` ([params]); the file's JSON stays in `data`, as in the original."""
        self.data = tfjson.read(filename, "a controller JSON file", CONTROLLER_MAX_BYTES)
        params = controller_params_of(self.data, filename, self.param_count, self.cfg.exp_mode)
        print(f"loading file {filename}")
        self.set_model_params(params)

    def get_random_model_params(self, stdev=0.1):
        return np.random.standard_cauchy(self.param_count) * stdev

    def init_random_model_params(self, stdev=0.1):
        """Cauchy-random controller, VAE and MDN-RNN, as the original (V and M get cauchy * stdev
        in JSON scale, i.e. weights of cauchy * stdev / 10000)."""
        self.set_model_params(self.get_random_model_params(stdev))
        self.vae.set_model_params(self.vae.get_random_model_params(stdev))
        self.rnn.set_model_params(self.rnn.get_random_model_params(stdev))


def simulate(model, train_mode=False, render_mode=True, num_episode=5, seed=-1, max_len=-1, on_step=None,
             no_reward_steps=0):
    """Run `num_episode` episodes; returns (reward_list, t_list), t = last 0-based step index.

    As the original (agent/rollout.py runs them: OneEnv): a seed >= 0 seeds `random`, `np.random`
    and the env ONCE before all episodes (consecutive tracks follow); each episode resets M's
    state and the env; the step cap is cfg.max_episode_length, or `max_len` when training with
    max_len > 0; after each episode one more encode + act runs (it consumed np.random draws in
    the original, kept for replay equality). `on_step(job, episode, t, obs, action)`, if given,
    sees each step before the env takes it (for GIFs; it returns the action to take). With
    train_mode and `no_reward_steps` N > 0 (TrainConfig.no_reward_steps, off in the original)
    an episode also ends after N consecutive steps without a positive reward.
    """
    if seed >= 0:
        random.seed(seed)
        np.random.seed(seed)
        model.env.seed(seed)
    results = rollout(OneEnv(model), [model.env], [(0, e) for e in range(num_episode)],
                      step_cap(model, train_mode, max_len), no_reward_steps if train_mode else 0, on_step)
    reward_list, t_list = (list(column) for column in zip(*(results[0, e] for e in range(num_episode))))
    if render_mode:
        for total_reward, t in zip(reward_list, t_list):
            print("total reward", total_reward, "timesteps", t)
    return reward_list, t_list


def parse_args():
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
    if args.seed_option is not None:
        args.seed = args.seed_option
    return args, *config.from_args(args, ModelConfig, EvalConfig, EnvConfig)


def seeded_agent(params, seed, cfg, env_cfg):
    """The agent of `python model.py <mode> <params> <seed>`, in the original's order: `random` and
    `np.random` seeded, the agent built (its initial controller draws from np.random), then the
    controller of `params` loaded (without params: a random one, its stdev drawn from np.random).
    Whoever replays that command's episode (the report's agent GIF) builds its agent here."""
    random.seed(seed)
    np.random.seed(seed)
    if params:
        model = make_model(cfg=cfg, env_cfg=env_cfg)
        model.load_model(params)
    else:
        model = make_model(load_model=False, cfg=cfg, env_cfg=env_cfg)
        model.init_random_model_params(stdev=np.random.rand() * 0.01)
    return model


def render_episodes(model, args, eval_cfg, num_episode, seed):
    """`render`: each episode with a GIF of the full-size frames (and the window when shown)."""
    atomic.check_writable(os.path.dirname(eval_cfg.gif_path) or ".")
    rewards = []
    for i in range(num_episode):
        gif = eval_cfg.gif_path if num_episode == 1 else f"{os.path.splitext(eval_cfg.gif_path)[0]}.{i}.gif"
        caption = f"{os.path.basename(args.params or 'random controller')}, seed {seed}, episode {i}"
        with GifWriter(gif, caption=caption) as record:
            reward, steps_taken = simulate(model, train_mode=False, render_mode=True, num_episode=1,
                                           on_step=lambda job, e, t, obs, action: record(model.env.full_frame()) or action)
        print("terminal reward", reward, "average steps taken", np.mean(steps_taken) + 1)
        print("wrote", gif)
        rewards.append(reward[0])
    return rewards


def main():
    args, cfg, eval_cfg, env_cfg = parse_args()
    render_mode = args.mode == "render"
    num_episode = 1 if render_mode and "num_episode" not in vars(args) else eval_cfg.num_episode
    set_torch_for_acting(1 if render_mode else cfg.envs_per_worker)

    the_seed = checked_seed(args.seed if args.seed is not None else int(np.random.randint(10000)))
    if args.params:
        print("filename", args.params)
    model = seeded_agent(args.params, the_seed, cfg, env_cfg)
    print("model size", model.param_count)

    if render_mode:
        model.make_env(seed=the_seed, render_mode=has_display())
        reward_list = render_episodes(model, args, eval_cfg, num_episode, the_seed)
    elif cfg.envs_per_worker > 1:  # all episodes in one lockstep batch (agent/rollout.py)
        envs = [env_from_config(env_cfg) for _ in range(cfg.envs_per_worker)]
        ((reward_list, _),) = simulate_batch(model, envs, [model.model_params], [the_seed], num_episode=num_episode)
        print(*reward_list, sep="\n")
    else:
        model.make_env(seed=the_seed)
        reward_list = []
        for _ in range(num_episode):
            reward, _ = simulate(model, train_mode=False, render_mode=False, num_episode=1)
            print(reward[0])
            reward_list.append(reward[0])
    print("seed", the_seed, "average_reward", np.mean(reward_list), "stdev", np.std(reward_list))


if __name__ == "__main__":
    run(main)
