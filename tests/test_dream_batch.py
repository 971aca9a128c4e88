"""The batched dream (dream_env.CarRacingDreamBatch) and training in it (agent.dream_rollout):
sampling at a temperature against the original's Doom formula, K batched dreams against K
single dreams, the heads' reward and done, and a controller's return in the dream."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from agent.dream_rollout import simulate_dreams
from dream_env import CarRacingDream, CarRacingDreamBatch
from model import Model
from plumbing.cli import UserError
from rnn.rnn import MDNRNN, hps_sample, rnn_output, sample_z_batch

torch.set_num_threads(1)
Z = 32


def doom_sample(logmix, mean, logstd, temperature, np_random):
    """DoomCoverRNNEnv._step of the original's doomrnn.py after its sess.run, for one dream."""
    logmix2 = np.copy(logmix) / temperature
    logmix2 -= logmix2.max()
    logmix2 = np.exp(logmix2)
    logmix2 /= logmix2.sum(axis=1).reshape(Z, 1)
    chosen_mean, chosen_logstd = np.zeros(Z), np.zeros(Z)
    for j in range(Z):
        x, accumulate = np_random.rand(), 0
        for i in range(logmix2.shape[1]):
            accumulate += logmix2[j][i]
            if accumulate >= x:
                break
        chosen_mean[j], chosen_logstd[j] = mean[j][i], logstd[j][i]
    rand_gaussian = np_random.randn(Z) * np.sqrt(temperature)
    return chosen_mean + np.exp(chosen_logstd) * rand_gaussian


def heads_rnn(seed=0, done_bias=None):
    torch.manual_seed(seed)
    rnn = MDNRNN(hps_sample._replace(reward_done=1))
    if done_bias is not None:
        with torch.no_grad():
            rnn.head_w[:, 0] = 0.0
            rnn.head_b[0] = done_bias
    return rnn


def initial_z(n=5):
    rng = np.random.default_rng(3)
    return [(rng.normal(size=Z), rng.normal(-3, 0.5, size=Z)) for _ in range(n)]


@pytest.mark.parametrize("temperature", [0.5, 1.25])
def test_sampling_is_the_doom_formula_with_each_dreams_generator(temperature):
    rng = np.random.default_rng(0)
    logmix = np.log(rng.dirichlet(np.ones(5), (4, Z))).astype(np.float32)
    mean, logstd = rng.normal(size=(2, 4, Z, 5)).astype(np.float32)
    got = sample_z_batch(logmix, mean, logstd, temperature, [np.random.RandomState(s) for s in range(4)])
    for k in range(4):
        expected = doom_sample(logmix[k].astype(np.float64), mean[k], logstd[k], temperature, np.random.RandomState(k))
        np.testing.assert_array_equal(got[k], expected)


def test_a_batch_of_k_dreams_is_k_single_dreams():
    """CarRacingDreamBatch with K seeds against the original-API CarRacingDream, one per seed,
    under the same actions: the same z (up to the batched matrix product's rounding), reward, done."""
    rnn, entries, seeds = heads_rnn(), initial_z(), [3, 11, 12, 40]
    actions = np.random.default_rng(1).uniform([-1, 0, 0], [1, 1, 1], (30, len(seeds), 3))
    batch = CarRacingDreamBatch(rnn, entries, temperature=1.15)
    zs = [batch.reset(seeds)]
    steps = [batch.step(a) for a in actions]
    for k, seed in enumerate(seeds):
        single = CarRacingDream(SimpleNamespace(vae=None, rnn=rnn), entries, temperature=1.15)
        single.seed(seed)
        np.testing.assert_array_equal(single.reset(), zs[0][k])
        for t, a in enumerate(actions[:, k]):
            z, reward, done, _ = single.step(a)
            np.testing.assert_allclose(z, steps[t][0][k], rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(reward, steps[t][1][k], rtol=1e-4, atol=1e-5)
            assert done == steps[t][2][k]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_dream_dropout_is_the_recurrent_dropout_with_each_dreams_generator():
    """train_dropout_prob < 1: two steps of each dream against numpy with TF's cell (HWIO kernel on
    [x, h], gates i, j, f, o, forget bias +1), the candidate tanh(j) times a mask rand(256) < keep
    scaled by 1 / keep, drawn from the dream's generator after its reset and before its z sample."""
    keep, rnn, entries, seeds = 0.8, heads_rnn(), initial_z(), [3, 11]
    kernel, bias = rnn.kernel.detach().numpy().astype(np.float64), rnn.bias.detach().numpy().astype(np.float64)
    w, b = rnn.output_w.detach().numpy().astype(np.float64), rnn.output_b.detach().numpy().astype(np.float64)
    actions = np.random.default_rng(2).uniform([-1, 0, 0], [1, 1, 1], (2, len(seeds), 3))
    dream = CarRacingDreamBatch(rnn, entries, temperature=1.15, dropout_prob=keep)
    z0 = dream.reset(seeds)
    got = [dream.step(a)[0] for a in actions]
    for k, seed in enumerate(seeds):
        rng = np.random.RandomState(seed)
        mu, logvar = entries[rng.randint(0, len(entries))]
        z = mu + np.exp(logvar / 2.0) * rng.randn(Z)
        np.testing.assert_array_equal(z, z0[k])
        c, h = np.zeros(256), np.zeros(256)
        for t in range(2):
            i, j, f, o = np.split(np.concatenate([z, actions[t, k], h]) @ kernel + bias, 4)
            mask = (rng.rand(256) < keep) / keep
            c = c * sigmoid(f + 1.0) + sigmoid(i) * np.tanh(j) * mask
            h = np.tanh(c) * sigmoid(o)
            logmix, mean, logstd = np.split((h @ w + b).reshape(Z, 15), 3, axis=1)
            logmix = logmix - np.log(np.exp(logmix).sum(1, keepdims=True))
            z = doom_sample(logmix, mean, logstd, 1.15, rng)
            np.testing.assert_allclose(got[t][k], z, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dream.state.h[k].numpy(), h, rtol=1e-4, atol=1e-5)


def test_a_batch_of_dropout_dreams_is_k_batches_of_one():
    rnn, entries, seeds = heads_rnn(), initial_z(), [5, 6, 7]
    actions = np.random.default_rng(4).uniform([-1, 0, 0], [1, 1, 1], (20, len(seeds), 3))
    batch = CarRacingDreamBatch(rnn, entries, dropout_prob=0.9)
    batch.reset(seeds)
    zs = np.array([batch.step(a)[0] for a in actions])
    for k, seed in enumerate(seeds):
        one = CarRacingDreamBatch(rnn, entries, dropout_prob=0.9)
        one.reset([seed])
        np.testing.assert_allclose(np.array([one.step(a[k:k + 1])[0][0] for a in actions]), zs[:, k], rtol=1e-4,
                                   atol=1e-4)
    plain = CarRacingDreamBatch(rnn, entries)
    plain.reset(seeds)
    assert not np.allclose(np.array([plain.step(a)[0] for a in actions]), zs)  # the dropout changed the dreams


def test_done_comes_from_the_head_or_the_frame_cap():
    for bias, first_done in ((5.0, 1), (-5.0, 4)):
        dream = CarRacingDreamBatch(heads_rnn(done_bias=bias), initial_z(), max_frames=3)
        dream.reset([0, 1])
        dones = [dream.step(np.zeros((2, 3)))[2] for _ in range(4)]
        assert [d.all() for d in dones].index(True) == first_done - 1 and not any(d.any() for d in dones[:first_done - 1])


@pytest.mark.parametrize("warmup", [1, 3, 20])
def test_done_warmup_ignores_ms_done_in_the_first_steps_only(warmup):
    """M's done (a head that always fires) counts from step warmup + 1; the frame cap and the
    reward are untouched."""
    dream = CarRacingDreamBatch(heads_rnn(done_bias=5.0), initial_z(), max_frames=10, done_warmup=warmup)
    plain = CarRacingDreamBatch(heads_rnn(done_bias=5.0), initial_z(), max_frames=10)
    dream.reset([0, 1])
    plain.reset([0, 1])
    steps = [(dream.step(np.zeros((2, 3))), plain.step(np.zeros((2, 3)))) for _ in range(12)]
    dones = [s[2].all() for s, _ in steps]
    assert dones.index(True) == min(warmup, 10) and not any(s[2].any() for s, _ in steps[:min(warmup, 10)])
    for s, p in steps:
        np.testing.assert_array_equal(s[1], p[1])


def test_an_m_without_heads_is_refused_with_one_line():
    with pytest.raises(UserError, match="M has no reward and done heads"):
        CarRacingDreamBatch(MDNRNN(hps_sample), initial_z())


@pytest.fixture
def agent():
    torch.manual_seed(0)
    model = Model(load_model=False)
    model.rnn = heads_rnn(seed=2, done_bias=-1.0)  # done mostly by the head's h-dependent part
    with torch.no_grad():
        model.rnn.head_w[:, 0] = torch.linspace(-1, 1, 256)
    return model


def test_simulate_dreams_is_the_agent_driving_single_dreams(agent):
    """Each (solution, episode) of a packet: the agent's own loop (get_action on z and its state,
    the dream stepping M) on CarRacingDream seeded (seed, episode), summing the head's rewards
    until done or the step cap."""
    rng = np.random.default_rng(5)
    solutions = [rng.normal(0, 0.3, agent.param_count) for _ in range(2)]
    solutions.insert(1, solutions[0])
    seeds, cap = [7, 7, 9], 60
    got = simulate_dreams(agent, CarRacingDreamBatch(agent.rnn, initial_z(), temperature=1.25), solutions, seeds,
                          num_episode=2, max_len=cap)
    steps = []
    for params, seed, (rewards, ts) in zip(solutions, seeds, got):
        agent.set_model_params(params)
        for e in range(2):
            env = CarRacingDream(agent, initial_z(), temperature=1.25)
            env.seed((seed, e))
            z, total = env.reset(), 0.0
            for t in range(cap):
                z, reward, done, _ = env.step(agent.get_action(z))
                total += reward
                if done:
                    break
            np.testing.assert_allclose(rewards[e], total, rtol=1e-3, atol=1e-3)
            assert ts[e] == t
            steps.append(t)
    assert got[0] == got[1]  # the same controller and seed: the same dreams
    assert min(steps) < cap - 1  # some dream ended by its done head


def test_the_controller_sees_z_and_h_of_its_own_dream(agent):
    """rnn_output of the batch's state rows is what each single dream's agent acts on."""
    dream = CarRacingDreamBatch(agent.rnn, initial_z())
    z = dream.reset([1, 2])
    dream.step(np.zeros((2, 3)))
    x = rnn_output(dream.state, dream.z, agent.exp_mode)
    assert x.shape == (2, 32 + 256)
    np.testing.assert_array_equal(x[:, 32:], dream.state.h.numpy())
    assert not np.array_equal(z, dream.z)


@pytest.fixture(scope="module")
def dream_workdir(tmp_path_factory):
    """Random V; an M whose heads say reward 1000 and never done on every step; initial_z.json."""
    from files.tfjson import save_initial_z
    from vae.vae import ConvVAE

    d = tmp_path_factory.mktemp("dream_train")
    torch.manual_seed(0)
    ConvVAE().save_json(str(d / "vae" / "vae.json"))
    rnn = heads_rnn(done_bias=-100.0)
    with torch.no_grad():
        rnn.head_w[:, 1], rnn.head_b[1] = 0.0, 1000.0
    rnn.save_json(str(d / "rnn" / "rnn.json"))
    MDNRNN(hps_sample).save_json(str(d / "plain.json"))
    mu, logvar = np.array(initial_z()).transpose(1, 0, 2)[:, :, None, :]
    save_initial_z(str(d / "initial_z" / "initial_z.json"), mu.astype(np.float16), logvar.astype(np.float16))
    return d


def test_train_py_trains_in_the_dream_and_evaluates_on_the_real_track(dream_workdir):
    from conftest import run_script

    args = ["--config", "smoke", "--max_episode_length", "20", "--max_generations", "2", "--env_name",
            "carracing_dream", "--log_dir", "log"]
    run_script("train.py", *args, cwd=dream_workdir, mpi=3)
    hist = json.loads((dream_workdir / "log" / "carracing_dream.cma.1.4.hist.json").read_text())
    assert len(hist) == 2
    for row in hist:  # [gen, seconds, mean, min, max, std, ...]: every dream step paid 1000, 20 steps
        assert row[2] == row[3] == row[4] == 20000.0
    best = json.loads((dream_workdir / "log" / "carracing_dream.cma.1.4.best.json").read_text())
    assert abs(best[1]) < 1000  # the evaluation of the mean: real CarRacing, 20 steps
    proc = run_script("train.py", *args, "--train_temperature", "1.0", "--resume", cwd=dream_workdir, check=False)
    assert proc.returncode == 2 and "dream.train_temperature 1.25 there, 1.0 now" in proc.stderr  # a dream run's own
    proc = run_script("train.py", *args, "--train_dropout_prob", "0.9", "--resume", cwd=dream_workdir, check=False)
    assert proc.returncode == 2 and "dream.train_dropout_prob 1.0 there, 0.9 now" in proc.stderr
    proc = run_script("train.py", *args, "--train_done_warmup", "50", "--resume", cwd=dream_workdir, check=False)
    assert proc.returncode == 2 and "dream.train_done_warmup 0 there, 50 now" in proc.stderr
    proc = run_script("train.py", *args, "--train_dropout_prob", "1.5", "--log_dir", "keep", cwd=dream_workdir,
                      check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].endswith(
        "--train_dropout_prob 1.5: must be at most 1.0")

    proc = run_script("train.py", *args, "--rnn_path", "plain.json", "--log_dir", "plain", cwd=dream_workdir, mpi=3,
                      check=False, timeout=120)
    assert proc.returncode != 0 and "M has no reward and done heads" in proc.stderr


def test_dream_model_prints_the_heads_reward_and_done(dream_workdir, tmp_path):
    from conftest import run_script

    proc = run_script("dream_model.py", "--config", "smoke", "--initial_z_path", "initial_z/initial_z.json",
                      "--max_episode_length", "12", "--gif", tmp_path / "d.gif", "--seed", "3", cwd=dream_workdir)
    assert "dream of 12 frames" in proc.stdout
    assert "predicted reward 12000.00 (M's reward head); M's done head did not fire" in proc.stdout
