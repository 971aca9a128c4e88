"""The budget levers of the `small` preset (TrainConfig.no_reward_steps, train_renderer): a
training episode ends after N steps without reward and never an evaluation; training renders
with train_renderer and evaluations with --renderer; train.py runs with the small preset."""
import json

import numpy as np
import pytest
import torch
from conftest import run_script, write_random_agent

from agent.rollout import simulate_batch
from config import EnvConfig, ModelConfig, TrainConfig, preset
from env import make_env
from model import Model, simulate
from train import worker_envs

CAP = 80


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    np.random.seed(0)
    return Model(load_model=False, cfg=ModelConfig(max_episode_length=CAP))


def record_rewards(envs):
    """Wraps each env's step; returns {id(env): [rewards of its current episode]}."""
    rewards = {}
    for env in envs:
        def step(action, env=env, original=env.step):
            obs, reward, done, info = original(action)
            rewards.setdefault(id(env), []).append(reward)
            return obs, reward, done, info

        def reset(env=env, original=env.reset):
            obs = original()  # the reset runs a physics step of its own, through env.step
            rewards[id(env)] = []
            return obs
        env.step, env.reset = step, reset
    return rewards


def first_drought_end(rewards, n):
    """Index of the step that completes the first run of n consecutive rewards <= 0, else None."""
    run = 0
    for t, r in enumerate(rewards):
        run = 0 if r > 0 else run + 1
        if run == n:
            return t
    return None


def test_no_reward_steps_ends_training_episodes_only(model):
    model.env = make_env()
    rewards = record_rewards([model.env])
    model.set_model_params(np.random.default_rng(3).normal(size=model.param_count) * 0.2)
    _, (t_train,) = simulate(model, train_mode=True, render_mode=False, num_episode=1, seed=5, no_reward_steps=6)
    seen = rewards[id(model.env)]
    assert first_drought_end(seen, 6) == t_train == len(seen) - 1 < CAP - 1  # it ended on the 6th dry step
    _, (t_eval,) = simulate(model, train_mode=False, render_mode=False, num_episode=1, seed=5, no_reward_steps=6)
    assert t_eval == CAP - 1 and first_drought_end(rewards[id(model.env)], 6) is not None  # evaluations run full


def test_no_reward_steps_in_lockstep_batches(model):
    params = [np.random.default_rng(k).normal(size=model.param_count) * 0.2 for k in range(3)]
    envs = [make_env() for _ in range(2)]
    rewards = record_rewards(envs)
    ended = {}
    for env in envs:  # keep each episode's rewards when the next one resets the env
        def reset(env=env, original=env.reset):
            if rewards.get(id(env)):
                ended.setdefault(len(ended), list(rewards[id(env)]))
            return original()
        env.reset = reset
    results = simulate_batch(model, envs, params, [7, 8, 9], num_episode=1, train_mode=True, no_reward_steps=6)
    steps = sorted(t for _, (t,) in results)
    ended.update({len(ended) + i: list(r) for i, r in enumerate(rewards.values())})
    expected = sorted(first_drought_end(r, 6) if first_drought_end(r, 6) is not None else CAP - 1
                      for r in ended.values())
    assert steps == expected and max(steps) < CAP - 1
    full = simulate_batch(model, envs, params, [7, 8, 9], num_episode=1, train_mode=False, no_reward_steps=6)
    assert [t for _, (t,) in full] == [CAP - 1] * 3


def test_training_renders_with_train_renderer_and_evaluations_with_renderer():
    frames = {name: make_env(seed=11, renderer=name).reset() for name in ("fast", "approx")}
    assert not np.array_equal(frames["fast"], frames["approx"])
    for k in (1, 2):
        envs = worker_envs(TrainConfig(train_renderer="approx"), ModelConfig(envs_per_worker=k), EnvConfig())
        assert len(envs[0]) == len(envs[1]) == k
        for train_mode, name in ((0, "fast"), (1, "approx")):
            for env in envs[train_mode]:
                env.seed(11)
                assert np.array_equal(env.reset(), frames[name]), (train_mode, name)
    same = worker_envs(TrainConfig(), ModelConfig(), EnvConfig())
    assert same[0] is same[1]


def test_small_preset_validates_and_trains_at_tiny_scale(tmp_path):
    t = preset(TrainConfig, "small")
    assert (t.train_renderer, t.no_reward_steps) == ("approx", 0)
    assert (TrainConfig().train_renderer, TrainConfig().no_reward_steps) == ("", 0)  # off at paper scale
    write_random_agent(tmp_path)
    run_script("train.py", "--config", "small", "--max_episode_length", "30", "--max_generations", "1",
               "--eval_steps", "1", "--num_worker_trial", "2", "--num_episode", "2", "--no_reward_steps", "5",
               cwd=tmp_path, mpi=3)
    base = tmp_path / "log" / "carracing.cma.2.4"
    ((gen, _, *_, mean_steps, max_steps),) = json.loads(base.with_name(base.name + ".hist.json").read_text())
    assert gen == 1 and mean_steps < 30  # training episodes stopped early
    ((_, reward, params),) = json.loads(base.with_name(base.name + ".log.json").read_text())
    assert len(params) == 867 and np.isfinite(reward)
