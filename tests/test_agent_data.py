"""Data driven by a trained agent (off by default): extract.py --controller with its share of
random-policy episodes and action noise, policies.json, resume and refusals; vae_train.py and
rnn_train.py --init_from."""
import json
import shutil

import numpy as np
import pytest
import torch
from conftest import REPO, run_script
from test_extract import expected_seed, reference_actions
from test_rnn_train import TINY as RNN_TINY
from test_rnn_train import make_series
from test_vae_train import write_episodes

from vae.vae import ConvVAE

BEST = REPO / "log" / "carracing.cma.4.16.best.json"  # the shipped agent
FRAMES = 12
NOISE = 0.05


def load(folder):
    """{file name: {array: values}} of the episode files of `folder`."""
    out = {}
    for path in sorted(folder.glob("*.npz")):
        with np.load(path) as f:
            out[path.name] = {k: f[k] for k in f.files}
    return out


def agent_args(folder, noise=NOISE):
    return ["--max_trials", 4, "--max_frames", FRAMES, "--seed", 2, "--dir_name", folder, "--controller", BEST,
            "--vae_path", REPO / "vae/vae.json", "--rnn_path", REPO / "rnn/rnn.json", "--agent_share", 0.5,
            "--action_noise", noise, "--envs_per_worker", 2]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("agent")
    run_script("extract.py", *agent_args(tmp / "mixed"))
    run_script("extract.py", "--max_trials", 4, "--max_frames", FRAMES, "--seed", 2, "--dir_name", tmp / "random")
    return tmp


def first_agent_action(obs0, seed, noise):
    """The shipped agent's first action from the reset frame, from its parts: V's mu and logvar,
    z with the episode's noise stream (seed, 0), h = 0, a = tanh([z, h] W + b), then the noise
    stream (seed, 0, 1) and the action space's bounds."""
    vae = ConvVAE(batch_size=1, is_training=False).eval()
    vae.load_json(REPO / "vae/vae.json")
    mu, logvar = vae.encode_mu_logvar(obs0[None].astype(np.float32) / 255.0)
    z = mu[0] + np.exp(logvar[0] / 2.0) * np.random.default_rng((seed, 0)).standard_normal(32)
    params = np.array(json.loads(BEST.read_text())[0])
    a = np.tanh(np.concatenate([z, np.zeros(256)]) @ params[3:].reshape(288, 3) + params[:3])
    a = np.array([a[0], (a[1] + 1) / 2, np.clip(a[2], 0, 1)])
    return np.clip(a + np.random.default_rng((seed, 0, 1)).normal(0, noise, 3), [-1, 0, 0], [1, 1, 1])


def test_the_agent_drives_its_share_and_the_rest_is_the_random_policy(recorded):
    mixed, random = load(recorded / "mixed"), load(recorded / "random")
    policies = json.loads((recorded / "mixed/policies.json").read_text())
    seeds = [expected_seed(2, i) for i in range(4)]
    assert policies["episodes"] == {str(s): p for s, p in zip(seeds, ["random", "agent", "random", "agent"])}
    assert policies["settings"]["action_noise"] == NOISE and policies["settings"]["agent_share"] == 0.5
    for i, seed in enumerate(seeds):
        episode, plain = mixed[f"{seed}.npz"], random[f"{seed}.npz"]
        assert episode["obs"].shape == (FRAMES, 64, 64, 3) and episode["action"].shape == (FRAMES, 3)
        assert np.array_equal(episode["obs"][0], plain["obs"][0])  # the same track either way
        if i % 2 == 0:  # random policy: the very file a plain extract writes
            assert np.array_equal(episode["action"], plain["action"])
            np.testing.assert_allclose(episode["action"], reference_actions(seed, FRAMES), atol=2e-3)
        else:
            np.testing.assert_allclose(episode["action"][0], first_agent_action(episode["obs"][0], seed, NOISE),
                                       atol=2e-3)
            assert not np.allclose(episode["action"], plain["action"], atol=0.05)


def test_a_resumed_agent_run_writes_the_same_bytes(recorded, tmp_path):
    shutil.copytree(recorded / "mixed", tmp_path / "mixed")
    agent_file = tmp_path / "mixed" / f"{expected_seed(2, 3)}.npz"
    agent_file.unlink()
    out = run_script("extract.py", *agent_args(tmp_path / "mixed")).stdout
    assert "2 episodes recorded, 2 already complete" in out  # the lost file's group of 2 agent episodes
    again, first = load(tmp_path / "mixed"), load(recorded / "mixed")
    assert sorted(again) == sorted(first)
    for name in first:
        for key in ("obs", "action"):
            assert np.array_equal(again[name][key], first[name][key])


@pytest.mark.parametrize("args, flag", [(["--action_noise", 0.1], "--action_noise"),
                                        (["--agent_share", 0.25], "--agent_share"),
                                        (["--controller", ""], "--controller")])
def test_other_settings_in_the_same_folder_are_refused(recorded, tmp_path, args, flag):
    shutil.copytree(recorded / "mixed", tmp_path / "mixed")
    before = load(tmp_path / "mixed")
    base = agent_args(tmp_path / "mixed")
    for name, value in zip(args[::2], args[1::2]):
        base[base.index(name) + 1] = value
    proc = run_script("extract.py", *base, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "policies.json" in proc.stderr and flag in proc.stderr
    assert sorted(load(tmp_path / "mixed")) == sorted(before)


def test_an_agent_run_over_random_episodes_is_refused(recorded, tmp_path):
    shutil.copytree(recorded / "random", tmp_path / "random")
    proc = run_script("extract.py", *agent_args(tmp_path / "random"), check=False)
    assert proc.returncode == 2 and "--controller" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "random/policies.json").exists()


@pytest.mark.parametrize("flag", ["--controller", "--vae_path", "--rnn_path"])
def test_a_missing_agent_file_is_one_line_naming_it(tmp_path, flag):
    args = agent_args(tmp_path / "rec")
    args[args.index(flag) + 1] = tmp_path / "none.json"
    proc = run_script("extract.py", *args, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "none.json" in proc.stderr and flag in proc.stderr
    assert not (tmp_path / "rec").exists()


def test_vae_init_from_starts_from_those_weights(tmp_path):
    write_episodes(tmp_path / "record", [10, 10])
    torch.manual_seed(5)  # not the script's seed 0: a fresh start would differ
    ConvVAE().save_json(tmp_path / "start.json")
    # learning rate 0: Adam leaves the weights where they started, so vae.json is the start file
    run_script("vae_train.py", "--init_from", "start.json", "--learning_rate", 0, "--num_epoch", 1, "--batch_size", 10,
               "--device", "cpu", cwd=tmp_path)
    assert (tmp_path / "tf_vae/vae.json").read_bytes() == (tmp_path / "start.json").read_bytes()
    proc = run_script("vae_train.py", "--init_from", BEST, "--num_epoch", 1, "--batch_size", 10, "--device", "cpu",
                      "--model_save_path", "other", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and str(BEST) in proc.stderr and "Traceback" not in proc.stderr


def test_rnn_init_from_starts_from_those_weights(tmp_path):
    make_series(tmp_path / "series.npz")
    run_script("rnn_train.py", *RNN_TINY, "--num_steps", 5, "--series_path", "series.npz", "--seed", 3,
               "--model_save_path", "start", cwd=tmp_path)
    run_script("rnn_train.py", *RNN_TINY, "--num_steps", 3, "--series_path", "series.npz", "--init_from",
               "start/rnn.json", "--learning_rate", 0, "--min_learning_rate", 0, cwd=tmp_path)
    assert (tmp_path / "tf_rnn/rnn.json").read_bytes() == (tmp_path / "start/rnn.json").read_bytes()
    fresh = run_script("rnn_train.py", *RNN_TINY, "--num_steps", 3, "--series_path", "series.npz",
                       "--learning_rate", 0, "--min_learning_rate", 0, "--model_save_path", "fresh", cwd=tmp_path)
    assert fresh.returncode == 0
    assert (tmp_path / "fresh/rnn.json").read_bytes() != (tmp_path / "start/rnn.json").read_bytes()


def test_agent_episodes_record_the_rewards_of_the_steps_they_took(recorded, tmp_path):
    """--record_rewards on agent episodes: the same frames and actions as without it, and each
    step's reward and done as CarRacing pays them for the actions recorded."""
    from gymnasium.envs.box2d.car_racing import CarRacing

    run_script("extract.py", *agent_args(tmp_path / "rewards"), "--record_rewards", 1)
    mixed, with_rewards = load(recorded / "mixed"), load(tmp_path / "rewards")
    for name, episode in with_rewards.items():
        assert np.array_equal(episode["obs"], mixed[name]["obs"]) and np.array_equal(episode["action"], mixed[name]["action"])
        car = CarRacing(lap_complete_percent=1.0)
        car.reset(seed=int(name.split(".")[0]))
        replay = [car.step(a.astype(np.float64))[1:3] for a in episode["action"]]
        car.close()
        np.testing.assert_allclose(episode["reward"], [r for r, _ in replay], atol=1e-4)
        assert episode["done"].tolist() == [d for _, d in replay]
