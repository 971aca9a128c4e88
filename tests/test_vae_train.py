"""vae_train.py: the streamed shuffle, a tiny run that learns, kill + --resume, bad data."""
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import REPO, run_script

import vae_train
from files import episodes
from plumbing.cli import UserError
from vae.vae import ConvVAE


def write_episodes(folder, lengths, seed=0):
    """Synthetic episodes: smooth colour ramps, shifted per frame; frame (i, t) is tagged by
    its first pixel (i, t % 256) so tests can tell frames apart."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, 64)[None, None, :, None]
    for i, n in enumerate(lengths):
        shift = rng.integers(0, 80, (n, 1, 1, 1))
        obs = ((ramp * rng.random(3) + shift) % 256).astype(np.uint8) * np.ones((1, 64, 1, 1), np.uint8)
        obs[:, 0, 0, 0], obs[:, 0, 0, 1] = i, np.arange(n) % 256
        action = rng.normal(size=(n, 3)).astype(np.float16)
        np.savez_compressed(os.path.join(folder, f"{i}.npz"), obs=obs, action=action)


def stream(folder, cfg, epoch, start_batch=0):
    files = episodes.list_episodes(folder, 10000)
    lengths = [episodes.episode_length(f) for f in files]
    with ThreadPoolExecutor(1) as pool:
        return [b[:, 0, 0, :2].copy() for b in vae_train.epoch_batches(files, lengths, cfg, epoch, start_batch, pool)]


def test_stream_serves_every_frame_once_per_epoch_and_resumes_exactly(tmp_path):
    lengths = [37, 50, 23, 41, 50]
    write_episodes(tmp_path, lengths)
    cfg = SimpleNamespace(batch_size=10, shuffle_files=2, seed=3, hflip=False)
    batches = stream(tmp_path, cfg, epoch=0)
    assert len(batches) == sum(lengths) // 10 and all(len(b) == 10 for b in batches)
    tags = [tuple(t) for b in batches for t in b]
    assert len(set(tags)) == len(tags) == 200  # 201 frames: one dropped, none twice
    assert all(b.tolist() == a.tolist() for a, b in zip(batches[7:], stream(tmp_path, cfg, 0, start_batch=7)))
    assert [b.tolist() for b in stream(tmp_path, cfg, epoch=1)] != [b.tolist() for b in batches]
    episodes_per_batch = np.mean([len(set(b[:, 0])) for b in batches])
    assert episodes_per_batch > 1.5  # frames of a window are interleaved, not episode by episode


def test_a_window_of_all_files_is_a_full_shuffle(tmp_path):
    write_episodes(tmp_path, [30, 30, 30])
    cfg = SimpleNamespace(batch_size=9, shuffle_files=3, seed=0, hflip=False)  # the original's behaviour
    batches = stream(tmp_path, cfg, epoch=0)
    assert len(batches) == 10 and len({tuple(t) for b in batches for t in b}) == 90
    assert all(len(set(b[:, 0])) >= 2 for b in batches)  # every batch mixes episodes


def test_hflip_mirrors_a_random_half_in_the_same_order_and_resumes_exactly(tmp_path):
    """--hflip (off by default): the same frames in the same order, about half of them mirrored
    left-right (numpy's flip of the width axis), a fresh half each epoch, and a resumed epoch
    mirrors the same frames."""
    lengths = [37, 50, 23, 41, 50]
    write_episodes(tmp_path, lengths)
    files = episodes.list_episodes(tmp_path, 10000)
    frames = {(i, t): f for i, path in enumerate(files) for t, f in enumerate(episodes.load_episode(path)["obs"])}

    def served(hflip, epoch, start_batch=0):
        cfg = SimpleNamespace(batch_size=10, shuffle_files=2, seed=3, hflip=hflip)
        with ThreadPoolExecutor(1) as pool:
            return np.concatenate(list(vae_train.epoch_batches(files, [episodes.episode_length(f) for f in files], cfg,
                                                               epoch, start_batch, pool)))

    for epoch in (0, 1):
        flipped, plain = served(True, epoch), served(False, epoch)
        tags = [(int(f[0, 0, 0]), int(f[0, 0, 1])) for f in plain]
        assert [frames[t].tolist() for t in tags] == plain.tolist()  # off: the frames as recorded
        mirrored = np.array([not np.array_equal(a, b) for a, b in zip(flipped, plain)])
        assert all(np.array_equal(a, np.flip(b, axis=1)) for a, b in zip(flipped[mirrored], plain[mirrored]))
        assert 0.35 < mirrored.mean() < 0.65
        if epoch == 0:
            first = mirrored
    assert not np.array_equal(first, mirrored)  # epoch 1 mirrors other frames
    assert np.array_equal(served(True, 1, start_batch=7), served(True, 1)[70:])


def test_bad_data_gets_one_line_naming_the_file(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        episodes.list_episodes(tmp_path / "missing", 10)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no episode .npz files"):
        episodes.list_episodes(tmp_path / "empty", 10)
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(UserError, match="junk.npz: corrupt"):
        episodes.episode_length(tmp_path / "junk.npz")
    np.savez_compressed(tmp_path / "small.npz", obs=np.zeros((5, 32, 32, 3), np.uint8))
    with pytest.raises(UserError, match=r"small.npz: obs is uint8 \(5, 32, 32, 3\)"):
        episodes.episode_length(tmp_path / "small.npz")
    np.savez_compressed(tmp_path / "noobs.npz", action=np.zeros((5, 3)))
    with pytest.raises(UserError, match="noobs.npz: no 'obs' array"):
        episodes.episode_length(tmp_path / "noobs.npz")
    write_episodes(tmp_path / "rec", [20])
    data = (tmp_path / "rec" / "0.npz").read_bytes()
    (tmp_path / "rec" / "0.npz").write_bytes(data[:len(data) // 2] + bytes(200) + data[len(data) // 2 + 200:])
    with pytest.raises(UserError, match="0.npz: corrupt"):
        episodes.load_episode(tmp_path / "rec" / "0.npz")


def test_script_reports_a_missing_folder_in_one_line(tmp_path):
    proc = run_script("vae_train.py", "--data_dir", tmp_path / "nothing", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"vae_train.py: error: {tmp_path / 'nothing'}: no such folder "
                                                "(record episodes with extract.py first)"]


TINY = ["--batch_size", "10", "--shuffle_files", "2", "--num_epoch", "3", "--learning_rate", "0.001",
        "--log_every", "4", "--save_every", "1000", "--checkpoint_every", "4", "--device", "cpu"]
EPISODES = [20, 15, 25]  # 6 batches per epoch, 18 steps


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    """An uninterrupted tiny run: its folder and its output."""
    folder = tmp_path_factory.mktemp("whole")
    write_episodes(folder / "record", EPISODES)
    proc = run_script("vae_train.py", *TINY, cwd=folder)
    return folder, proc.stdout + proc.stderr


def test_tiny_run_learns_and_writes_outputs(whole_run):
    folder, output = whole_run
    losses = [float(v) for v in re.findall(r"epoch \d/3: loss ([\d.]+)", output)]
    assert len(losses) == 3 and losses[2] < 0.9 * losses[0]
    ConvVAE().load_json(folder / "tf_vae" / "vae.json")
    pngs = sorted(n for n in os.listdir(folder / "runs" / "vae") if n.endswith(".png"))
    assert pngs == [f"reconstruction_epoch00{e}.png" for e in (1, 2, 3)]
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(folder / "runs" / "vae"))


def test_resume_after_sigkill_is_bit_identical(whole_run, tmp_path):
    write_episodes(tmp_path / "record", EPISODES)
    ckpt = tmp_path / "tf_vae" / "vae_ckpt.pt"
    proc = subprocess.Popen([sys.executable, str(REPO / "vae_train.py"), *TINY], cwd=tmp_path,
                            env=dict(os.environ, OMP_NUM_THREADS="1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(ckpt, weights_only=True)["step"]
    assert 0 < killed_at < 18 and not (tmp_path / "tf_vae" / "vae.json").exists()
    run_script("vae_train.py", *TINY, "--resume", "true", cwd=tmp_path)

    whole = torch.load(whole_run[0] / "tf_vae" / "vae_ckpt.pt", weights_only=True)
    resumed = torch.load(ckpt, weights_only=True)
    assert whole["step"] == resumed["step"] == 18
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert (whole_run[0] / "tf_vae" / "vae.json").read_bytes() == (tmp_path / "tf_vae" / "vae.json").read_bytes()

    write_episodes(tmp_path / "record", EPISODES + [10])  # other data: refused
    proc = run_script("vae_train.py", *TINY, "--resume", "1", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "written with other settings (files [" in proc.stderr and "; lengths [" in proc.stderr


def test_max_steps_stops_inside_an_epoch_and_more_steps_resume_there(whole_run, tmp_path):
    """--max_steps caps V's steps whatever the data (the study's row b): 7 of the 18 steps stop inside
    epoch 2 (6 batches per epoch); raising it to 18 on --resume ends bit-identical to the uninterrupted run."""
    write_episodes(tmp_path / "record", EPISODES)
    run_script("vae_train.py", *TINY, "--max_steps", "7", cwd=tmp_path)
    ckpt = torch.load(tmp_path / "tf_vae" / "vae_ckpt.pt", weights_only=True)
    assert (ckpt["step"], ckpt["epoch"], ckpt["batch"]) == (7, 1, 1)
    assert (tmp_path / "tf_vae" / "vae.json").exists()
    run_script("vae_train.py", *TINY, "--max_steps", "18", "--resume", "1", cwd=tmp_path)
    assert (whole_run[0] / "tf_vae" / "vae.json").read_bytes() == (tmp_path / "tf_vae" / "vae.json").read_bytes()


def test_hflip_is_kept_by_the_checkpoint(tmp_path):
    """A run with --hflip resumes only with it: the flag is part of what the checkpoint records."""
    write_episodes(tmp_path / "record", EPISODES)
    run_script("vae_train.py", *TINY, "--max_steps", "4", "--hflip", "1", cwd=tmp_path)
    proc = run_script("vae_train.py", *TINY, "--resume", "1", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == ("vae_train.py: error: tf_vae/vae_ckpt.pt: written with other "
                                                    "settings (hflip True there, False now); resume needs the same ones")
    run_script("vae_train.py", *TINY, "--max_steps", "6", "--hflip", "1", "--resume", "1", cwd=tmp_path)
