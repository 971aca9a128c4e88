"""rnn_train.py end to end on tiny synthetic series files: outputs, learning, resume, bad input."""
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import torch
from conftest import REPO, run_script

import config
import rnn_train
from plumbing.cli import UserError
from plumbing.torch_setup import set_torch_for_acting, set_torch_for_training
from rnn.rnn import MDNRNN, mdn_loss

torch.set_num_threads(1)  # the tiny in-process runs; subprocesses get OMP_NUM_THREADS=1
TINY = ["--rnn_size", "16", "--max_seq_len", "20", "--batch_size", "4", "--device", "cpu"]


def make_series(path, n=6, frames=21, seed=0):
    """Learnable episodes: z drifts with the action; float16 as series.py writes them."""
    rng = np.random.RandomState(seed)
    action = rng.uniform(-1, 1, (n, frames, 3))
    mu = np.cumsum(0.3 * action[..., :1] + 0.05 * rng.randn(n, frames, 32), axis=1)
    logvar = np.full((n, frames, 32), -4.0) + 0.1 * rng.randn(n, frames, 32)
    np.savez_compressed(path, action=action.astype(np.float16), mu=mu.astype(np.float16),
                        logvar=logvar.astype(np.float16))
    return action.astype(np.float16), mu.astype(np.float16), logvar.astype(np.float16)


def tiny_hps(**kw):
    return config.preset(config.RNNConfig, rnn_size=16, max_seq_len=20, batch_size=4, **kw)


def test_training_lowers_the_loss_and_writes_the_original_files(tmp_path):
    action, mu, logvar = make_series(tmp_path / "series.npz", n=6)
    run_script("rnn_train.py", *TINY, "--num_steps", "60", "--series_path", "series.npz", cwd=tmp_path)

    # initial_z.json: frame-0 [mu, logvar] of every episode (fewer than 1000), trunc(x * 1e4), indent=0
    text = (tmp_path / "tf_initial_z/initial_z.json").read_text()
    expected = [np.trunc(a[:, 0].astype(np.float32) * np.float32(1e4)).astype(int).tolist() for a in (mu, logvar)]
    assert json.loads(text) == expected
    assert text == json.dumps(expected, sort_keys=True, indent=0, separators=(",", ": "))
    assert text.startswith("[\n[\n[\n") and not text.endswith("\n")

    hps = tiny_hps()
    trained = MDNRNN(hps)
    trained.load_json(tmp_path / "tf_rnn/rnn.json")
    torch.manual_seed(0)
    initial = MDNRNN(hps)  # the script's initialisation (seed 0)
    x = torch.tensor(np.concatenate([mu[:, :-1], action[:, :-1]], 2), dtype=torch.float32)
    y = torch.tensor(mu[:, 1:], dtype=torch.float32)
    with torch.no_grad():
        before, after = (mdn_loss(*m(x)[:3], y).item() for m in (initial, trained))
    assert after < 0.75 * before
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "runs/rnn"))


def test_resume_after_a_kill_is_bit_identical(tmp_path, monkeypatch):
    make_series(tmp_path / "series.npz", n=6)
    args = [*TINY, "--num_steps", "300", "--checkpoint_every", "10", "--series_path", "series.npz"]
    reference = tmp_path / "reference"
    monkeypatch.chdir(tmp_path)
    rnn_train.main([*args, "--model_save_path", str(reference)])

    cmd = [sys.executable, str(REPO / "rnn_train.py"), *args]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    checkpoint = tmp_path / "tf_rnn/rnn_ckpt.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "tf_rnn/rnn.json").exists()
    step = torch.load(checkpoint, weights_only=True)["step"]
    assert 0 < step < 300

    out = run_script("rnn_train.py", *args, "--resume", cwd=tmp_path)
    assert f"trained {300 - step} steps" in out.stdout
    assert (tmp_path / "tf_rnn/rnn.json").read_bytes() == (reference / "rnn.json").read_bytes()


def test_resume_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_series(tmp_path / "series.npz")
    base = [*TINY, "--series_path", "series.npz", "--num_steps", "2"]
    with pytest.raises(UserError, match="rnn_ckpt.pt: no checkpoint to resume from"):
        rnn_train.main([*base, "--resume", "1"])
    rnn_train.main(base)
    with pytest.raises(UserError, match=r"other settings \(num_mixture 5 there, 3 now\)"):
        rnn_train.main([*base, "--num_mixture", "3", "--resume", "1"])
    torch.save({"model": {}}, tmp_path / "tf_rnn/rnn_ckpt.pt")
    with pytest.raises(UserError, match="rnn_ckpt.pt: not a checkpoint of rnn_train.py$"):
        rnn_train.main([*base, "--resume", "1"])
    (tmp_path / "tf_rnn/rnn_ckpt.pt").write_bytes(b"garbage")
    with pytest.raises(UserError, match="rnn_ckpt.pt: not a checkpoint of rnn_train.py \\("):
        rnn_train.main([*base, "--resume", "1"])


def _npy_header(shape, dtype):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, dict(descr=dtype, fortran_order=False, shape=shape))
    return buf.getvalue()


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("garbage", "corrupt or not a series file (not an .npz archive)"),
    ("truncated", "corrupt or not a series file"),
    ("wrong_keys", "no 'logvar' array (not a series file)"),
    ("object_array", "array action is object, expected float16 or float32 or float64"),
    ("bomb", "array action (100000, 1000, 32) takes 6400000000 bytes, more than the 2147483648 a series file may take"),
    ("non_finite", "holds values that are not finite"),
    ("wrong_width", "expected action (N,T,3), mu and logvar (N,T,32)"),
    ("short", "episodes have 15 frames, training needs max_seq_len + 1 = 21"),
    ("few", "3 episodes, fewer than batch_size 4"),
])
def test_bad_series_files(tmp_path, case, message):
    path = tmp_path / "series.npz"
    if case == "garbage":
        path.write_bytes(b"this is not a zip file at all")
    elif case == "truncated":
        make_series(path)
        path.write_bytes(path.read_bytes()[:300])
    elif case == "wrong_keys":
        np.savez(path, action=np.zeros((6, 21, 3)), mu=np.zeros((6, 21, 32)))
    elif case == "object_array":  # np.load with allow_pickle would unpickle it
        np.savez(path, action=np.array([None] * 3, dtype=object), mu=np.zeros(1), logvar=np.zeros(1))
    elif case == "bomb":  # headers that claim 6.4 GB each, deflated to nothing
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name in ("action", "mu", "logvar"):
                z.writestr(f"{name}.npy", _npy_header((100000, 1000, 32), "<f2") + b"\0" * 1000)
    elif case == "non_finite":
        make_series(path)
        arrays = dict(np.load(path))
        arrays["mu"][0, 0, 0] = np.inf
        np.savez(path, **arrays)
    elif case == "wrong_width":
        np.savez(path, action=np.zeros((6, 21, 3)), mu=np.zeros((6, 21, 16)), logvar=np.zeros((6, 21, 16)))
    elif case == "short":
        make_series(path, frames=15)
    elif case == "few":
        make_series(path, n=3)
    with pytest.raises(UserError) as e:
        rnn_train.load_series(str(path), tiny_hps())
    assert str(e.value).startswith(str(path)) and message in str(e.value)


def test_a_bad_series_file_is_one_line_and_keeps_earlier_outputs(tmp_path):
    (tmp_path / "tf_rnn").mkdir()
    (tmp_path / "tf_rnn/rnn.json").write_text("good earlier weights")
    (tmp_path / "series.npz").write_bytes(b"PK\x03\x04 broken")
    proc = run_script("rnn_train.py", *TINY, "--num_steps", "2", "--series_path", "series.npz",
                      cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == proc.stderr.strip().splitlines()[0]
    assert proc.stderr.startswith("rnn_train.py: error: series.npz: corrupt or not a series file")
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "tf_rnn/rnn.json").read_text() == "good earlier weights"
    assert not (tmp_path / "tf_initial_z").exists()


def test_switches_an_agent_set_in_the_process_do_not_change_the_result(tmp_path, monkeypatch):
    """oneDNN off and denormals flushed (set_torch_for_acting) once moved rnn.json by a byte when a
    trainer ran after an agent in one process: the trainer now sets its switches itself."""
    make_series(tmp_path / "series.npz", n=6)
    args = [*TINY, "--num_steps", "300", "--series_path", "series.npz"]
    run_script("rnn_train.py", *args, "--model_save_path", "fresh", cwd=tmp_path)
    monkeypatch.chdir(tmp_path)
    set_torch_for_acting(1)
    try:
        rnn_train.main([*args, "--model_save_path", "after_an_agent"])
    finally:
        set_torch_for_training(1)
    assert (tmp_path / "after_an_agent/rnn.json").read_bytes() == (tmp_path / "fresh/rnn.json").read_bytes()


def test_zero_steps_writes_the_untrained_m_every_run_starts_from(tmp_path):
    """--num_steps 0 (ctallec's untrained-M ablation): rnn.json is the initialisation at --seed, the
    one a training run starts from (here one whose Adam steps are 0), and initial_z.json is written."""
    make_series(tmp_path / "series.npz")
    base = [*TINY, "--series_path", "series.npz"]
    run_script("rnn_train.py", *base, "--num_steps", "0", "--model_save_path", "untrained", cwd=tmp_path)
    run_script("rnn_train.py", *base, "--num_steps", "3", "--learning_rate", "0", "--min_learning_rate", "0",
               "--model_save_path", "still", cwd=tmp_path)
    run_script("rnn_train.py", *base, "--num_steps", "0", "--seed", "1", "--model_save_path", "seed1", cwd=tmp_path)
    untrained = (tmp_path / "untrained/rnn.json").read_bytes()
    assert untrained == (tmp_path / "still/rnn.json").read_bytes()
    assert untrained != (tmp_path / "seed1/rnn.json").read_bytes()
    assert (tmp_path / "tf_initial_z/initial_z.json").exists()
    assert not (tmp_path / "untrained/rnn_ckpt.pt").exists()
