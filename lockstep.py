"""Batched evaluation: `simulate_batch` runs many episodes on K envs stepped in lockstep.

The option envs_per_worker K > 1 (off by default: the original steps one env) of train.py's
workers and `model.py norender`. Per step, one V encode of the K frames, one controller call
and one M step serve all K envs; a finished episode leaves the batch and the next queued one
takes its env. Solution i with seed s runs episodes 0..n-1 on the tracks the one-env path
would draw (one track generator seeded with s, reset in episode order), but its z noise comes
from a stream of its own per episode, np.random.default_rng((s, e)), instead of the original's
global np.random; so the result does not depend on K, and differs from `model.simulate`'s only
through that noise.
"""
from collections import deque

import numpy as np
import torch
from gymnasium.utils import seeding

import controller
from rnn.rnn import LSTMStateTuple, rnn_output


class _Episode:
    """One episode of `simulate_batch` running on an env."""

    def __init__(self, env, job, episode, noise, obs):
        self.env, self.job, self.episode, self.noise, self.obs = env, job, episode, noise, obs
        self.t, self.total_reward, self.since_reward = 0, 0.0, 0


def simulate_batch(model, envs, solutions, seeds, num_episode=1, train_mode=False, max_len=-1, no_reward_steps=0,
                   on_step=None):
    """Run `num_episode` episodes of each controller in `solutions` (flat parameter arrays) on the
    K = len(envs) envs in lockstep; returns [(reward_list, t_list)] per solution, as
    `model.simulate` would for (solution, seed), apart from the z noise.

    Solution i's episodes reset, in episode order, from one track generator seeded with
    seeds[i] (Gymnasium's np_random, shared by whichever envs run them): episode e gets the
    track of the one-env path's e-th reset after env.seed(seeds[i]). Episode e's z noise is
    np.random.default_rng((seeds[i], e)); the global np.random and `random` are not touched.
    An episode ends as in `simulate`: done, the step cap (cfg.max_episode_length, or `max_len`
    when training), or with train_mode `no_reward_steps` steps without a positive reward.

    `on_step(job, episode, t, obs, action)`, if given, sees every step's 64x64 frame and the
    action chosen on it, and returns the action to take instead (the same one to only record);
    M is advanced with the action taken.
    """
    cap = max_len if train_mode and max_len > 0 else model.cfg.max_episode_length
    patience = no_reward_steps if train_mode else 0
    free = list(envs)
    tracks = [seeding.np_random(int(seed))[0] for seed in seeds]
    layers = [model.controller_layers(p) for p in solutions]
    queue = deque((job, e) for job in range(len(solutions)) for e in range(num_episode))
    rewards = [[0.0] * num_episode for _ in solutions]
    steps = [[0] * num_episode for _ in solutions]
    running, state, batch_layers = [], model.rnn.initial_state(0), None
    while queue or running:
        if queue and free:
            while queue and free:
                job, e = queue.popleft()
                env = free.pop(0)
                env.np_random = tracks[job]
                running.append(_Episode(env, job, e, np.random.default_rng((int(seeds[job]), e)), env.reset()))
            fresh = model.rnn.initial_state(len(running) - len(state.c))
            state = LSTMStateTuple(torch.cat([state.c, fresh.c]), torch.cat([state.h, fresh.h]))
            batch_layers = controller.stack([layers[r.job] for r in running])
        mu, logvar = model.encode_frames(np.stack([r.obs for r in running]))
        z = mu + np.exp(logvar / 2.0) * np.stack([r.noise.standard_normal(mu.shape[1]) for r in running])
        actions = controller.act(rnn_output(state, z, model.exp_mode), batch_layers)
        if on_step is not None:
            actions = np.stack([on_step(r.job, r.episode, r.t, r.obs, a) for r, a in zip(running, actions)])
        with torch.inference_mode():
            _, state = model.rnn.step(torch.from_numpy(np.concatenate([z, actions], 1).astype(np.float32)), state)
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
