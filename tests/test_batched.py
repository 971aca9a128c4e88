"""Batched evaluation (agent.rollout.simulate_batch, --envs_per_worker K): K lockstep envs give the
one-env path's tracks, the same results for every K, drop finished episodes from the batch,
and train.py, model.py and extract.py give the same outputs for different K.

Tolerances: batched convolutions round differently from batch-1 ones (V's mu differs by
~3e-8 between batch sizes, measured), so results are compared with 1e-9 on rewards and
exactly on step counts. In every comparison here the differences measured were 0: a 3e-8
change of z moves an action by ~1e-8, which over these short episodes never moves a tile
contact by a step, the only way a reward could change."""
import json

import numpy as np
import pytest
import torch
from conftest import run_script, write_random_agent

from agent import controller
from agent.rollout import simulate_batch
from config import ModelConfig
from env import make_env
from model import Model, simulate
from rnn.rnn import rnn_output

STEPS = 40


@pytest.fixture(scope="module")
def model():
    """An agent with a random V and M (1 torch thread, as the workers: fast on a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    yield Model(load_model=False, cfg=ModelConfig(max_episode_length=STEPS))
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def envs():
    return [make_env() for _ in range(4)]


def solutions(model, n):
    rng = np.random.default_rng(2)
    return [rng.normal(size=model.param_count) * 0.3 for _ in range(n)]


def record_resets(envs):
    """Wraps the batch envs' reset: returns {id(track generator): [track arrays in reset order]}."""
    seen = {}
    for env in envs:
        def reset(env=env, original=env.reset):
            obs = original()
            seen.setdefault(id(env.np_random), []).append(np.array(env.track))
            return obs
        env.reset = reset
    return seen


def one_env_tracks(seed, n):
    env = make_env(seed=seed)
    tracks = []
    for _ in range(n):
        env.reset()
        tracks.append(np.array(env.track))
    return tracks


def test_tracks_are_the_one_env_consecutive_tracks(model, envs):
    seen = record_resets(envs[:3])
    simulate_batch(model, envs[:3], solutions(model, 2), [11, 12], num_episode=3, train_mode=True, max_len=3)
    assert len(seen) == 2  # one track generator per solution, shared by the envs running its episodes
    for tracks, seed in zip(seen.values(), (11, 12)):
        expected = one_env_tracks(seed, 3)
        assert len(tracks) == 3
        assert all(t.shape == e.shape and np.array_equal(t, e) for t, e in zip(tracks, expected))
        assert not np.array_equal(expected[0][:5], expected[1][:5])  # consecutive tracks differ
    for env in envs[:3]:
        del env.reset


def test_k_envs_equal_one_env_after_another(model, envs):
    sols = solutions(model, 3)
    one = simulate_batch(model, envs[:1], sols, [5, 6, 5], num_episode=2)
    four = simulate_batch(model, envs[:4], sols, [5, 6, 5], num_episode=2)
    for (r1, t1), (r4, t4) in zip(one, four):
        assert t1 == t4 == [STEPS - 1] * 2
        np.testing.assert_allclose(r4, r1, rtol=0, atol=1e-9)
    assert one[0][0] != one[2][0]  # another controller on the same tracks drives differently


def test_same_results_as_simulate_when_z_has_no_noise(model, envs):
    """With logvar -> -inf, z = mu: the one-env `simulate` (the original's loop) and the batched
    path must then agree up to rounding, tracks and controller included."""
    bias = model.vae.enc_fc_log_var.bias
    saved = bias.clone()
    with torch.no_grad():
        bias.fill_(-200.0)  # exp(-100) * eps: below float64 resolution of mu
    try:
        sols = solutions(model, 2)
        expected = []
        for sol, seed in zip(sols, (8, 9)):
            model.set_model_params(sol)
            model.make_env()
            expected.append(simulate(model, train_mode=True, render_mode=False, num_episode=2, seed=seed, max_len=25))
        batched = simulate_batch(model, envs[:4], sols, [8, 9], num_episode=2, train_mode=True, max_len=25)
    finally:
        with torch.no_grad():
            bias.copy_(saved)
    for (r1, t1), (rb, tb) in zip(expected, batched):
        assert t1 == tb == [24, 24]
        np.testing.assert_allclose(rb, r1, rtol=0, atol=1e-9)


def test_finished_episodes_leave_the_batch(model, envs):
    """Solution 0's episodes end after 10 steps (its envs report done): the batch shrinks from 3,
    the queued episode takes a free env, and the results equal one env at a time."""
    sols = solutions(model, 2)
    ends = {}
    sizes = []
    encode = model.encode_frames

    def counting_encode(frames):
        sizes.append(len(frames))
        return encode(frames)

    for env in envs[:3]:
        def step(action, env=env, original=env.step):
            obs, reward, done, info = original(action)
            env.steps_done = getattr(env, "steps_done", 0) + 1
            return obs, reward, done or (ends.get(id(env.np_random)) == env.steps_done), info

        def reset(env=env, original=env.reset):
            obs = original()  # ends with one step(None), not an agent's step
            env.steps_done = 0
            return obs
        env.step, env.reset = step, reset

    from agent import rollout as model_module
    real_np_random = model_module.seeding.np_random

    def tagged_np_random(seed):
        generator = real_np_random(seed)
        if seed == 21:  # solution 0's track generator: its episodes end at step 10
            ends[id(generator[0])] = 10
        return generator

    model_module.seeding.np_random = tagged_np_random
    model.encode_frames = counting_encode
    try:
        batched = simulate_batch(model, envs[:3], sols, [21, 22], num_episode=2)
        batch_sizes = sizes[:]
        one = simulate_batch(model, envs[:1], sols, [21, 22], num_episode=2)
    finally:
        model_module.seeding.np_random = real_np_random
        del model.encode_frames
        for env in envs[:3]:
            del env.step, env.reset
    # (0,0), (0,1), (1,0) start; at step 10 solution 0's end and (1,1) joins; (1,0) ends at 40, (1,1) at 50
    assert batch_sizes == [3] * 10 + [2] * 30 + [1] * 10
    assert [t for _, t in batched] == [[9, 9], [STEPS - 1, STEPS - 1]]
    for (r1, t1), (rb, tb) in zip(one, batched):
        assert t1 == tb
        np.testing.assert_allclose(rb, r1, rtol=0, atol=1e-9)


@pytest.mark.parametrize("mode", ["zh", "zch", "zc", "z", "z_hidden"])
def test_batched_step_equals_get_action_row_by_row(mode):
    """K controllers and LSTM states advanced together (rollout.py's Lockstep: features, one
    controller call, one torch LSTM step) = each advanced alone by get_action (numpy LSTM)."""
    torch.manual_seed(0)
    m = Model(load_model=False, cfg=ModelConfig(exp_mode=mode))
    rng = np.random.default_rng(3)
    params = [rng.normal(size=m.param_count) * 0.2 for _ in range(3)]
    zs = rng.normal(size=(6, 3, 32))
    stacked = controller.stack([m.controller_layers(p) for p in params])
    state, batch_actions = m.rnn.initial_state(3), []
    for z in zs:
        actions = controller.act(rnn_output(state, z, m.exp_mode), stacked)
        with torch.no_grad():
            _, state = m.rnn.step(torch.from_numpy(np.concatenate([z, actions], 1).astype(np.float32)), state)
        batch_actions.append(actions)
    for row, p in enumerate(params):
        m.set_model_params(p)
        m.reset()
        single = np.array([m.get_action(z[row]) for z in zs])
        np.testing.assert_allclose(np.array(batch_actions)[:, row], single, rtol=0, atol=1e-6)
        np.testing.assert_allclose(state.h[row].numpy(), m.state.h[0], rtol=0, atol=1e-6)
    assert np.ptp(np.array(batch_actions)[:, :, 0]) > 0.05  # the actions vary: rows are not trivially equal


def test_z_noise_is_per_episode_and_global_rng_untouched(model, envs):
    state = np.random.get_state()
    a = simulate_batch(model, envs[:2], solutions(model, 1), [3], num_episode=2)
    assert np.random.get_state()[1].tolist() == state[1].tolist()
    b = simulate_batch(model, envs[:2], solutions(model, 1), [3], num_episode=2)
    assert a == b  # repeatable from the seed alone


# --- the scripts ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Random vae/vae.json and rnn/rnn.json, as train.py and model.py expect."""
    return write_random_agent(tmp_path_factory.mktemp("batched"))


def test_train_logs_do_not_depend_on_k(workdir):
    """2 workers x 2 solutions x 3 episodes, one generation and its evaluation: K = 2 and K = 4
    batch the episodes differently (K = 4 refills a freed env with the next solution's episode)
    and must write the same logs. K = 1 is not compared: it is the original's loop, whose z noise
    comes from the global np.random stream (seeded by each simulate call, interleaved across
    episodes), so its fitness differs wherever the noise matters."""
    args = ["--config", "smoke", "--num_episode", "3", "--max_episode_length", "12", "--max_generations", "1",
            "--eval_steps", "1"]
    logs = {}
    for k in (2, 4):
        run_script("train.py", *args, "--envs_per_worker", k, "--log_dir", f"k{k}", cwd=workdir, mpi=3)
        base = workdir / f"k{k}" / "carracing.cma.3.4"
        read = lambda suffix: json.loads((base.parent / (base.name + suffix)).read_text())  # noqa: E731
        logs[k] = dict(hist=[row[:1] + row[2:] for row in read(".hist.json")],  # row[1] is wall seconds
                       best=read(".best.json"), mean=read(".json"), log=read(".log.json"))
    assert logs[2] == logs[4]
    assert len(logs[2]["hist"]) == 1 and logs[2]["hist"][0][2] != logs[2]["hist"][0][3]  # max != min: distinct fitness


def test_model_norender_batches_episodes(workdir):
    args = ["norender", "--config", "smoke", "--num_episode", "3", "--max_episode_length", "12", "--seed", "4"]
    k1, k2, k3 = (run_script("model.py", *args, "--envs_per_worker", k, cwd=workdir).stdout.splitlines()
                  for k in (1, 2, 3))
    assert k2[-4:] == k3[-4:]  # same rewards, mean and std for any K > 1
    assert k2[-1].startswith("seed 4 average_reward")
    # The original's untrained agent (controller weights ~0.01 * Cauchy) barely reacts to its z noise,
    # so K = 1 (global noise) gives the same rewards here: K > 1 runs the same tracks in the same order.
    np.testing.assert_allclose([float(x) for x in k2[-4:-1]], [float(x) for x in k1[-4:-1]], rtol=0, atol=1e-6)
    assert len(set(k2[-4:-1])) == 3  # three different tracks


def test_extract_files_identical_for_any_k(tmp_path):
    for k in (1, 2):
        run_script("extract.py", "--max_trials", 3, "--max_frames", 8, "--seed", 1, "--envs_per_worker", k,
                   "--dir_name", tmp_path / f"k{k}")
    names = sorted(p.name for p in (tmp_path / "k1").iterdir())
    assert len(names) == 3 and names == sorted(p.name for p in (tmp_path / "k2").iterdir())
    for name in names:
        with np.load(tmp_path / "k1" / name) as one, np.load(tmp_path / "k2" / name) as two:
            assert one.files == two.files == ["obs", "action"]
            assert all(np.array_equal(one[key], two[key]) and one[key].dtype == two[key].dtype for key in one.files)
            assert one["obs"].shape == (8, 64, 64, 3)
