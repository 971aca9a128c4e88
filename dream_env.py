"""The dream: M (the MDN-RNN) run as an environment whose observation is z, as the original's dream_env.py.

Visualisation only, as in the original (CarRacing's controller is trained in the real env). The
API is the original's (gym 0.9.4 style, like env.py):

    env = make_env("carracing", agent, seed=7)   # agent: model.Model; its V draws, its M dreams
    z = env.reset()                               # z0 ~ N(mu, exp(logvar)) of a random initial_z.json entry
    z, reward, done, info = env.step(action)      # z' ~ M's mixture at the temperature; reward 0
    frame = env.render("rgb_array")               # V's decoding of z, 512x512 (x8 bilinear, as the original)

- reset: picks a random entry of initial_z.json (`randint`), then z = mu + exp(logvar / 2) * randn(32);
  M starts from its zero state.
- step: M's mixture for the next z given (z, action) from M's current state, then the original's
  temperature sampling (rnn.sample_z: logmix / tau, softmax, a component per dimension by walking
  the cumulative sum against rand(), then mean + exp(logstd) * randn * sqrt(tau)).
  `done` comes on the step that takes the frame count past max_frames (the original's `> 1200`).
- All draws come from the env's own generator, `np.random.RandomState(seed)`, so `make_env(..., seed)`
  repeats a dream exactly (gym 0.9.4 hashed the seed first; its draws cannot be replayed anyway).

Fix of the original (README): the original advanced M's state TWICE per dream step, once in the
agent's get_action and again in the env from that already-advanced state with the same (z, a),
so the dream was not M's prediction for the step the agent took. Here the env holds M's state,
advances it once per step (`rnn.mdn_step` from the pre-step state) and hands the result to the
agent (`agent.state`), replacing the agent's own advance from the same inputs; the sampled z is
M's actual prediction for (z, action).

With an M that has reward and done heads (rnn_train.py --reward_done 1), `step` returns the
reward head's prediction, and `done` also when the done logit is > 0 (the original's Doom rule);
an M without them keeps the original's reward 0.

`CarRacingDreamBatch` is the dream for training (train.py --env_name carracing_dream), in the
shape of the original's Doom dream env (doomrnn.py's DoomCoverRNNEnv) but K dreams in one LSTM
batch: reset(seeds) starts dream k with its own RandomState(seeds[k]) (an initial_z.json entry
and its z, as `reset` above), step(actions) runs M once on the K (z, action) rows, samples each
next z at the temperature from its dream's generator (rnn.sample_z_batch: the draws and the
formula of `sample_z`, the original's), and returns the heads' reward and done (logit > 0, or the
frame count past max_frames). Dream k of a batch is the dream a batch of one with seeds[k] gives
(up to the float rounding of a batched matrix product).

`dropout_prob` < 1 (DreamConfig.train_dropout_prob, ours, off by default: the original's Doom dream
has none): every dream step drops M's cell candidates (the original's recurrent dropout, at this
keep probability, scaled by 1 / keep), each dream's mask drawn from its own generator before its z
sample, as DropoutsDreamLand dreams with the dropout its M trained with (peers.md section 7): a
dream then never follows one fixed M that a controller could learn to exploit.

`done_warmup` N > 0 (DreamConfig.train_done_warmup, ours, off by default): M's done counts only
from step N + 1 of a dream. From its zero state M's done head fires falsely in the first steps of
21-37% of dreams (docs/dream.md), ending them with a few steps' reward, while a real car cannot
leave the playfield within its first second (the camera's 50-frame zoom).
"""
import numpy as np
import torch
from gymnasium import spaces
from PIL import Image

from config import DreamConfig
from files import tfjson
from files.tfjson import load_initial_z
from plumbing.cli import UserError
from rnn.rnn import (  # noqa: F401 (get_pi_idx: the original's name here)
    LSTMStateTuple, dream_step, get_pi_idx, mdn_step, rnn_init_state, sample_z, sample_z_batch)

SCREEN_X, SCREEN_Y = 64, 64
FACTOR = 8  # the original's display upscale


class CarRacingDream:
    """The original's CarRacingDream over an agent's V and M (see the module docstring). `initial_z`
    (ours): the (mu, logvar) entries to start from; default DreamConfig's initial_z_path, as the original's."""

    def __init__(self, agent, initial_z=None, temperature=DreamConfig.temperature, max_frames=DreamConfig.max_frames):
        if initial_z is None:
            initial_z = load_initial_z(DreamConfig.initial_z_path, agent.rnn.hps.output_seq_width)
        if not temperature > 0:
            raise UserError(f"temperature {temperature}: must be > 0 (the sampling divides by it)")
        self.agent, self.vae, self.rnn = agent, agent.vae, agent.rnn
        self.z_size = self.rnn.hps.output_seq_width
        self.observation_space = spaces.Box(low=-50.0, high=50.0, shape=(self.z_size,), dtype=np.float32)
        self.initial_z = initial_z
        self.temperature = temperature
        self.max_frames = max_frames
        self.np_random = np.random.RandomState()
        self.z, self.state, self.frame_count = None, None, None
        self.total_reward, self.done_by_m = 0.0, False  # the heads' sum and done since reset (M with heads)
        self.screen, self.window_closed = None, False

    def seed(self, seed):
        """Seed the env's generator (initial entry, initial z, every dream step)."""
        self.np_random = np.random.RandomState(seed)
        return [seed]

    def reset(self):
        """A fresh dream: M's zero state and an initial z; returns z (z_size,)."""
        mu, logvar = self.initial_z[self.np_random.randint(0, len(self.initial_z))]
        self.z = mu + np.exp(logvar / 2.0) * self.np_random.randn(*logvar.shape)
        self.state = rnn_init_state(self.rnn)
        self.agent.state = self.state
        self.frame_count = 0
        self.total_reward, self.done_by_m = 0.0, False
        return self.z

    def step(self, action):
        """Advance M once with (z, action) and sample the next z from its mixture (the fix above)."""
        self.frame_count += 1
        reward, done_logit = 0.0, 0.0
        if getattr(self.rnn.hps, "reward_done", 0):
            logmix, mean, logstd, reward, done_logit, self.state = dream_step(self.rnn, self.z, action, self.state)
        else:
            logmix, mean, logstd, self.state = mdn_step(self.rnn, self.z, action, self.state)
        self.agent.state = self.state
        self.z = sample_z(logmix, mean, logstd, self.temperature, self.np_random)
        self.total_reward += reward
        self.done_by_m = done_logit > 0
        done = self.frame_count > self.max_frames or self.done_by_m
        return self.z, reward, done, {}

    def decode_obs(self, z):
        """V's decoding of z: a (64, 64, 3) uint8 frame."""
        img = self.vae.decode(np.asarray(z).reshape(1, self.z_size))[0] * 255.0
        return np.round(img).astype(np.uint8)

    def render(self, mode="human"):
        """The current z decoded and upscaled x8 (bilinear, as the original's imresize): a (512, 512, 3)
        uint8 array, returned in both modes; "human" also shows it in a pygame window (once the user
        closes that window, `window_closed` is True)."""
        small = Image.fromarray(self.decode_obs(self.z))
        img = np.asarray(small.resize((SCREEN_X * FACTOR, SCREEN_Y * FACTOR), Image.Resampling.BILINEAR))
        if mode == "human":
            self._show(img)
        return img

    def _show(self, img):
        import pygame

        if self.screen is None:
            pygame.display.init()
            self.screen = pygame.display.set_mode((img.shape[1], img.shape[0]))
            pygame.display.set_caption("World Models: dream")
        pygame.surfarray.blit_array(self.screen, img.swapaxes(0, 1))
        pygame.display.flip()
        if pygame.event.get(pygame.QUIT):
            self.window_closed = True

    def close(self):
        if self.screen is not None:
            import pygame

            pygame.display.quit()
            self.screen = None


class CarRacingDreamBatch:
    """K dreams of M (an MDNRNN with reward and done heads) in one LSTM batch (module docstring)."""

    def __init__(self, rnn, initial_z, temperature=DreamConfig.train_temperature, max_frames=DreamConfig.max_frames,
                 dropout_prob=DreamConfig.train_dropout_prob, done_warmup=DreamConfig.train_done_warmup):
        if not getattr(rnn.hps, "reward_done", 0):
            raise UserError("M has no reward and done heads to dream with (train it with rnn_train.py --reward_done 1 "
                            "on episodes recorded with extract.py --record_rewards 1)")
        if not temperature > 0:
            raise UserError(f"temperature {temperature}: must be > 0 (the sampling divides by it)")
        if not 0 < dropout_prob <= 1:
            raise UserError(f"dropout keep probability {dropout_prob}: must be in (0, 1] (1 = no dropout)")
        self.rnn, self.initial_z, self.temperature, self.max_frames = rnn, initial_z, temperature, max_frames
        self.dropout_prob, self.done_warmup = dropout_prob, done_warmup
        self.rngs, self.z, self.state, self.frame_count = [], None, None, 0

    def reset(self, seeds):
        """K = len(seeds) fresh dreams (M's zero state, an initial z each); returns z (K, z_size)."""
        self.rngs = [np.random.RandomState(s) for s in seeds]
        self.z = np.array([self._initial_z(rng) for rng in self.rngs])
        self.state = self.rnn.initial_state(len(seeds))
        self.frame_count = 0
        return self.z

    def _initial_z(self, rng):
        mu, logvar = self.initial_z[rng.randint(0, len(self.initial_z))]
        return mu + np.exp(logvar / 2.0) * rng.randn(*logvar.shape)

    @torch.inference_mode()
    def step(self, actions):
        """Advance the K dreams with `actions` (K, 3): (z (K, z_size), reward (K,), done (K,) bool)."""
        self.frame_count += 1
        x = torch.from_numpy(np.concatenate([self.z, actions], 1).astype(np.float32))
        out, self.state = self.rnn.step(x, self.state, self._dropout_mask())
        logmix, mean, logstd = (t.numpy() for t in self.rnn.mdn(out))
        done_logit, reward = (t.numpy() for t in self.rnn.heads(out))
        self.z = sample_z_batch(logmix, mean, logstd, self.temperature, self.rngs)
        done_by_m = (done_logit > 0) & (self.frame_count > self.done_warmup)
        return self.z, reward.astype(np.float64), done_by_m | (self.frame_count > self.max_frames)

    def _dropout_mask(self):
        """Each dream's recurrent dropout mask for this step, (K, rnn_size) of 0 or 1 / keep, drawn
        from its own generator before its z sample; None without dropout."""
        if self.dropout_prob == 1:
            return None
        n = self.rnn.hps.rnn_size
        mask = np.array([rng.rand(n) < self.dropout_prob for rng in self.rngs], dtype=np.float32)
        return torch.from_numpy(mask / np.float32(self.dropout_prob))

    def keep(self, rows):
        """Go on with the dreams `rows` (indices, in order) only, e.g. those not done."""
        rows = list(rows)
        self.rngs, self.z = [self.rngs[k] for k in rows], self.z[rows]
        self.state = LSTMStateTuple(self.state.c[rows], self.state.h[rows])


def make_env(env_name="carracing", agent=None, seed=-1, render_mode=False, cfg=None):
    """The original's make_env: a CarRacingDream over `agent` (a model.Model) with cfg's
    initial_z_path, temperature and max_frames; a seed < 0 is drawn from np.random, as the original.
    `render_mode` has no effect, as in the original (render(mode) decides)."""
    cfg = cfg or DreamConfig()
    env = CarRacingDream(agent, load_initial_z(cfg.initial_z_path, agent.rnn.hps.output_seq_width),
                         temperature=cfg.temperature, max_frames=cfg.max_frames)
    if seed < 0:
        seed = np.random.randint(2**31 - 1)
    env.seed(seed)
    return env


def __getattr__(name):
    """The original's module globals `initial_mu`, `initial_logvar` (JSON-scale int lists) and
    `initial_mu_logvar` ([[mu, logvar], ...]), which it read at import: read here on first use."""
    if name not in ("initial_mu", "initial_logvar", "initial_mu_logvar"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    initial_mu, initial_logvar = tfjson.read(DreamConfig.initial_z_path, "an initial_z JSON file")
    values = dict(initial_mu=initial_mu, initial_logvar=initial_logvar,
                  initial_mu_logvar=[list(elem) for elem in zip(initial_mu, initial_logvar)])
    globals().update(values)
    return values[name]
