"""The agent's one rollout loop, `rollout`, and the two ways it acts.

`rollout` runs queued episodes on envs: each step the policy acts for every running episode,
an optional hook sees (and may replace) each action, M advances with the actions taken, every
env steps, and an episode ends on done, at the step cap, or after `patience` > 0 steps without a
positive reward (training only); a free env takes the next queued episode. It serves:

- `OneEnv`: the original's `simulate` (model.py), one env: each step `model.encode_obs` (z noise
  from the global np.random) and `model.get_action(z)`, which acts on the controller's attributes
  and advances M, so a subclass's override is what acts; the original's draws kept for replay
  equality (a file-name draw per episode, one more encode + act after it);
- `Lockstep`: `simulate_batch`, the option envs_per_worker K > 1 of train.py's workers and
  `model.py norender`, and extract.py's agent episodes. Per step, one V encode of the K frames,
  one controller call and one M step serve all K envs. Solution i with seed s runs episodes
  0..n-1 on the tracks the one-env path would draw (one track generator seeded with s, reset in
  episode order), but its z noise comes from a stream of its own per episode,
  np.random.default_rng((s, e)), instead of the original's global np.random; so the result does
  not depend on K, and differs from `model.simulate`'s only through that noise.
"""
from collections import deque

import numpy as np
import torch
from gymnasium.utils import seeding

from agent import controller
from rnn.rnn import LSTMStateTuple, rnn_output


class _Episode:
    """One episode running on an env."""

    def __init__(self, env, job, episode, obs):
        self.env, self.job, self.episode, self.obs = env, job, episode, obs
        self.t, self.total_reward, self.since_reward = 0, 0.0, 0


def step_cap(model, train_mode, max_len):
    """The step cap of an episode: cfg.max_episode_length, or `max_len` when training with max_len > 0."""
    return max_len if train_mode and max_len > 0 else model.cfg.max_episode_length


def rollout(policy, envs, episodes, cap, patience=0, on_step=None):
    """Run `episodes` ([(job, episode index)], in queue order) on `envs`; returns {(job, episode):
    (total reward, last 0-based step index)}. `on_step(job, episode, t, obs, action)`, if given,
    sees every step's 64x64 frame and the action chosen on it, and returns the action to take."""
    queue, free, running, results = deque(episodes), list(envs), [], {}
    while queue or running:
        if queue and free:
            fresh = []
            while queue and free:
                job, e = queue.popleft()
                env = free.pop(0)
                fresh.append(_Episode(env, job, e, policy.reset(env, job, e)))
            running += fresh
            policy.started(running, fresh)
        actions = policy.act(running)
        if on_step is not None:
            actions = np.stack([on_step(r.job, r.episode, r.t, r.obs, a) for r, a in zip(running, actions)])
        policy.advance(actions)
        keep = []
        for k, (r, action) in enumerate(zip(running, actions)):
            r.obs, reward, done, _ = r.env.step(action)
            r.total_reward += reward
            r.since_reward = 0 if reward > 0 else r.since_reward + 1
            if done or r.t == cap - 1 or r.since_reward == patience > 0:
                results[r.job, r.episode] = (r.total_reward, r.t)
                policy.finished(r)
                free.append(r.env)
            else:
                r.t += 1
                keep.append(k)
        if len(keep) < len(running):
            running = [running[k] for k in keep]
            policy.kept(keep)
    return results


class OneEnv:
    """The original's agent on one env: model.encode_obs (z noise from the global np.random), then
    model.get_action(z), which also advances M (model.state) with the action it returns; so an
    `on_step` hook that replaces the action does not change what M was fed."""

    def __init__(self, model):
        self.model = model

    def reset(self, env, job, episode):
        self.model.reset()
        obs = env.reset()
        np.random.randint(2**31 - 1)  # the original drew a recording file name here
        return obs

    def started(self, running, fresh):
        pass

    def act(self, running):
        (r,) = running
        z, _, _ = self.model.encode_obs(r.obs)
        return [self.model.get_action(z)]

    def advance(self, actions):
        pass  # get_action advanced M

    def finished(self, r):
        z, _, _ = self.model.encode_obs(r.obs)  # one more encode + act: the original's np.random draws
        self.model.get_action(z)

    def kept(self, keep):
        pass


class Lockstep:
    """K controllers (`solutions`, flat parameters) acting in one batch on K envs; solution i's
    tracks come from one generator seeded with seeds[i], episode e's z noise from
    np.random.default_rng((seeds[i], e))."""

    def __init__(self, model, solutions, seeds):
        self.model, self.seeds = model, [int(s) for s in seeds]
        self.tracks = [seeding.np_random(s)[0] for s in self.seeds]
        self.layers = [model.controller_layers(p) for p in solutions]
        self.state, self.batch_layers, self.noise, self.z = model.rnn.initial_state(0), None, [], None

    def reset(self, env, job, episode):
        env.np_random = self.tracks[job]
        return env.reset()

    def started(self, running, fresh):
        self.noise += [np.random.default_rng((self.seeds[r.job], r.episode)) for r in fresh]
        more = self.model.rnn.initial_state(len(fresh))
        self.state = LSTMStateTuple(torch.cat([self.state.c, more.c]), torch.cat([self.state.h, more.h]))
        self.batch_layers = controller.stack([self.layers[r.job] for r in running])

    def act(self, running):
        mu, logvar = self.model.encode_frames(np.stack([r.obs for r in running]))
        self.z = mu + np.exp(logvar / 2.0) * np.stack([n.standard_normal(mu.shape[1]) for n in self.noise])
        return controller.act(rnn_output(self.state, self.z, self.model.exp_mode), self.batch_layers)

    def advance(self, actions):
        x = torch.from_numpy(np.concatenate([self.z, actions], 1).astype(np.float32))
        with torch.inference_mode():
            _, self.state = self.model.rnn.step(x, self.state)

    def finished(self, r):
        pass

    def kept(self, keep):
        self.noise = [self.noise[k] for k in keep]
        self.state = LSTMStateTuple(self.state.c[keep], self.state.h[keep])
        self.batch_layers = [(w[keep], b[keep]) for w, b in self.batch_layers]


def simulate_batch(model, envs, solutions, seeds, num_episode=1, train_mode=False, max_len=-1, no_reward_steps=0,
                   on_step=None):
    """Run `num_episode` episodes of each controller in `solutions` (flat parameter arrays) on the
    K = len(envs) envs in lockstep; returns [(reward_list, t_list)] per solution, as
    `model.simulate` would for (solution, seed), apart from the z noise (see Lockstep). The
    global np.random and `random` are not touched; `on_step` as `rollout`'s."""
    episodes = [(job, e) for job in range(len(solutions)) for e in range(num_episode)]
    results = rollout(Lockstep(model, solutions, seeds), envs, episodes, step_cap(model, train_mode, max_len),
                      no_reward_steps if train_mode else 0, on_step)
    return [tuple(map(list, zip(*(results[job, e] for e in range(num_episode))))) for job in range(len(solutions))]
