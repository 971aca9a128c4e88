"""series.py: the original's series.npz from episode files, and bad episodes."""
import numpy as np
import pytest
import torch
from conftest import run_script
from test_vae_train import write_episodes

import series
from plumbing.cli import UserError
from vae.vae import ConvVAE


@pytest.fixture(scope="module")
def vae_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("vae") / "vae.json"
    torch.manual_seed(0)
    ConvVAE().save_json(path)
    return path.read_bytes()


@pytest.fixture
def data(tmp_path, vae_json):
    write_episodes(tmp_path / "record", [30, 30, 30])
    (tmp_path / "tf_vae").mkdir()
    (tmp_path / "tf_vae" / "vae.json").write_bytes(vae_json)
    return tmp_path


def test_series_npz_has_the_originals_keys_dtypes_shapes_and_values(data):
    run_script("series.py", "--encode_batch_size", "16", cwd=data)
    with np.load(data / "series" / "series.npz") as out:
        assert sorted(out.files) == ["action", "logvar", "mu"]
        assert {k: (out[k].dtype, out[k].shape) for k in out.files} == {
            "action": (np.float16, (3, 30, 3)), "mu": (np.float16, (3, 30, 32)), "logvar": (np.float16, (3, 30, 32))}
        vae = ConvVAE()
        vae.load_json(data / "tf_vae" / "vae.json")
        for i in range(3):
            with np.load(data / "record" / f"{i}.npz") as ep:
                mu, logvar = vae.encode_mu_logvar(ep["obs"].astype(np.float64) / 255.0)  # the original's input
                np.testing.assert_array_equal(out["action"][i], ep["action"])
            np.testing.assert_allclose(out["mu"][i], mu, rtol=2e-3, atol=1e-4)
            np.testing.assert_allclose(out["logvar"][i], logvar, rtol=2e-3, atol=1e-4)


def test_short_and_corrupt_episodes_fail_by_default_and_are_skipped_on_request(data):
    run_script("series.py", cwd=data)
    good = (data / "series" / "series.npz").read_bytes()
    write_episodes(data / "extra", [30, 30, 12])
    (data / "extra" / "2.npz").rename(data / "record" / "4.npz")  # 12 frames
    (data / "record" / "5.npz").write_bytes(b"PK\x03\x04 truncated")

    proc = run_script("series.py", cwd=data, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "series.py: error: record/4.npz: 12 frames, but the episodes before it have 30 "
        "(series.npz needs one length) (--skip_bad leaves such files out)")
    assert (data / "series" / "series.npz").read_bytes() == good  # a failed run keeps the earlier output

    proc = run_script("series.py", "--skip_bad", cwd=data)
    assert proc.stderr.count("warning: skipping") == 2 and "5.npz: corrupt" in proc.stderr
    with np.load(data / "series" / "series.npz") as out:
        assert out["mu"].shape == (3, 30, 32) and out["action"].shape == (3, 30, 3)


def test_read_episode_names_wrong_actions(tmp_path):
    np.savez_compressed(tmp_path / "0.npz", obs=np.zeros((5, 64, 64, 3), np.uint8), action=np.zeros((4, 3), np.float16))
    error = series.read_episode(str(tmp_path / "0.npz"))
    assert isinstance(error, UserError) and "0.npz: action has shape (4, 3), expected (5, 3)" in str(error)


def test_a_text_file_named_npz_gets_one_message_from_every_reader(data):
    """The same line from series.py and vae_train.py (episodes.py is the one reader), alone on
    its line (the progress bars are cleared first), without numpy's allow_pickle advice."""
    (data / "record" / "1.npz").write_text("these are not frames\n")
    expected = f"{data / 'record' / '1.npz'}: corrupt or not an episode file (not an .npz archive)"
    lines = {}
    for script in ("series.py", "vae_train.py"):
        proc = run_script(script, "--data_dir", data / "record", cwd=data, check=False)
        assert proc.returncode == 2, script
        lines[script] = proc.stderr.rstrip("\n").split("\n")[-1].split("\r")[-1]
        assert "allow_pickle" not in proc.stderr and "Traceback" not in proc.stderr
    assert lines["series.py"].startswith("series.py: error: " + expected)
    assert lines["vae_train.py"] == "vae_train.py: error: " + expected


def add_rewards(folder, names, frames):
    for name in names:
        path = folder / name
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        reward = np.arange(frames, dtype=np.float32) * (1 + int(name[0]))
        np.savez_compressed(path, **arrays, reward=reward, done=reward > frames - 3)


def test_rewards_and_dones_are_carried_when_every_episode_has_them(data):
    add_rewards(data / "record", ["0.npz", "1.npz", "2.npz"], 30)
    proc = run_script("series.py", cwd=data)
    assert "with reward and done" in proc.stdout
    with np.load(data / "series" / "series.npz") as out:
        assert sorted(out.files) == ["action", "done", "logvar", "mu", "reward"]
        assert out["reward"].dtype == np.float32 and out["done"].dtype == np.bool_
        for i in range(3):
            np.testing.assert_array_equal(out["reward"][i], np.arange(30) * (1 + i))
            np.testing.assert_array_equal(out["done"][i], np.arange(30) * (1 + i) > 27)


def test_rewards_of_only_some_episodes_are_left_out_with_one_warning(data):
    run_script("series.py", cwd=data)
    plain = (data / "series" / "series.npz").read_bytes()
    add_rewards(data / "record", ["1.npz"], 30)
    proc = run_script("series.py", cwd=data)
    assert proc.stderr.count("warning: series.npz without reward and done") == 1
    assert (data / "series" / "series.npz").read_bytes() == plain


def test_a_reward_array_of_the_wrong_shape_is_named(tmp_path):
    obs, action = np.zeros((5, 64, 64, 3), np.uint8), np.zeros((5, 3), np.float16)
    np.savez_compressed(tmp_path / "0.npz", obs=obs, action=action, reward=np.zeros(4, np.float32), done=np.zeros(5, bool))
    error = series.read_episode(str(tmp_path / "0.npz"))
    assert isinstance(error, UserError) and "0.npz: reward is float32 (4,)" in str(error)
    np.savez_compressed(tmp_path / "1.npz", obs=obs, action=action, reward=np.zeros(5, np.float32))
    assert "but not both reward and done" in str(series.read_episode(str(tmp_path / "1.npz")))
