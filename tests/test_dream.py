"""dream_env.py and dream_model.py: M advances once per dream step, the original's temperature
sampling (against a numpy version of its _sample_next_z written here), done, both initial_z.json
layouts, seeding, the GIF, and one-line errors. V is a random ConvVAE; M, the controller and
initial_z.json are the ones this repository ships (the original's initial_z.json where its
single-entry layout is the point)."""
import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from conftest import REPO, run_script

import dream_model
from config import DreamConfig
from dream_env import CarRacingDream, make_env
from dream_model import dream, dream_gif
from files.media import CAPTION_HEIGHT, captioned
from files.tfjson import load_initial_z
from model import Model
from plumbing.cli import UserError, run
from rnn.rnn import mdn_step, rnn_init_state, rnn_next_state
from vae.vae import ConvVAE

torch.set_num_threads(1)
STEPS = 6


@pytest.fixture
def paths():
    return dict(rnn=REPO / "rnn" / "rnn.json", initial_z=REPO / "initial_z" / "initial_z.json",
                params=REPO / "log" / "carracing.cma.4.16.best.json")


@pytest.fixture
def agent(paths):
    """model.py's agent: random V, the shipped M and controller."""
    torch.manual_seed(0)
    model = Model(load_model=False)
    model.rnn.load_json(str(paths["rnn"]))
    model.load_model(str(paths["params"]))
    return model


@pytest.fixture(scope="module")
def vae_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("vae") / "vae.json"
    torch.manual_seed(0)
    ConvVAE().save_json(str(path))
    return path


# --- independent references: the original's formulas in plain numpy ----------------------------

def original_action(params, z, h):
    """The original's get_action for MODE_ZH: tanh([z, h] W + b), gas (a + 1) / 2, brake clipped."""
    params = np.asarray(params, dtype=np.float64)
    b, w = params[:3], params[3:].reshape(288, 3)
    a = np.tanh(np.concatenate([z, h]) @ w + b)
    a[1] = (a[1] + 1.0) / 2.0
    a[2] = min(max(a[2], 0.0), 1.0)
    return a


def original_sample(logmix, mean, logstd, temperature, rng):
    """The original's _sample_next_z after its sess.run, step by step."""
    logmix2 = np.copy(logmix).astype(np.float64) / temperature
    logmix2 -= logmix2.max()
    logmix2 = np.exp(logmix2)
    logmix2 /= logmix2.sum(axis=1).reshape(32, 1)
    chosen_mean, chosen_logstd = np.zeros(32), np.zeros(32)
    for j in range(32):
        x, accumulate, idx = rng.rand(), 0.0, -1
        for i in range(5):
            accumulate += logmix2[j][i]
            if accumulate >= x:
                idx = i
                break
        chosen_mean[j], chosen_logstd[j] = mean[j][idx], logstd[j][idx]
    rand_gaussian = rng.randn(32) * np.sqrt(temperature)
    return chosen_mean + np.exp(chosen_logstd) * rand_gaussian


def bilinear_x8(img):
    """Bilinear (triangle filter) upscale by 8 with clamped edges, one axis after the other."""
    n = img.shape[0]
    x = (np.arange(8 * n) + 0.5) / 8 - 0.5
    left = np.floor(x).astype(int)
    w = (x - left)[:, None, None]
    out = img.astype(np.float64)
    out = out[np.clip(left, 0, n - 1)] * (1 - w) + out[np.clip(left + 1, 0, n - 1)] * w
    out = out.transpose(1, 0, 2)
    out = out[np.clip(left, 0, n - 1)] * (1 - w) + out[np.clip(left + 1, 0, n - 1)] * w
    return out.transpose(1, 0, 2)


# --- the dream step -------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.7, 1.15])
def test_dream_is_m_prediction_advancing_once_per_step(agent, paths, temperature):
    env = CarRacingDream(agent, load_initial_z(paths["initial_z"]), temperature=temperature)
    env.seed(5)
    agent.state = rnn_init_state(agent.rnn)._replace(h=np.ones((1, 256), np.float32))  # reset must clear it
    z = env.reset()
    zs, states = [z], []
    for _ in range(STEPS):
        z, reward, done, info = env.step(agent.get_action(z))
        zs.append(z)
        states.append(agent.state)
        assert (reward, done, info) == (0.0, False, {})

    rng = np.random.RandomState(5)
    mus, logvars = json.loads(paths["initial_z"].read_text())  # rnn_train.py's layout: an entry per episode
    k = rng.randint(0, len(mus))
    z = np.array(mus[k]) / 1e4 + np.exp(np.array(logvars[k]) / 1e4 / 2.0) * rng.randn(32)
    np.testing.assert_allclose(zs[0], z, rtol=0, atol=1e-12)
    params = json.loads(paths["params"].read_text())[0]
    state = rnn_init_state(agent.rnn)
    for t in range(STEPS):
        action = original_action(params, z, state.h[0])
        if t == 0:  # the original's second advance, from the state get_action already advanced
            twice = mdn_step(agent.rnn, z, action, rnn_next_state(agent.rnn, z, action, state))[3]
        logmix, mean, logstd, state = mdn_step(agent.rnn, z, action, state)
        z = original_sample(logmix, mean, logstd, temperature, rng)
        np.testing.assert_allclose(states[t].c, state.c, rtol=0, atol=1e-6)
        np.testing.assert_allclose(states[t].h, state.h, rtol=0, atol=1e-6)
        np.testing.assert_allclose(zs[t + 1], z, rtol=0, atol=1e-5)
    assert np.abs(twice.c - states[0].c).max() > 1e-3  # the test tells the two apart


def test_done_after_max_frames_and_reward_zero(agent, paths):
    env = make_env("carracing", agent, seed=1, cfg=DreamConfig(initial_z_path=str(paths["initial_z"]), max_frames=3))
    z = env.reset()
    dones = []
    for _ in range(4):
        z, reward, done, _ = env.step(agent.get_action(z))
        assert reward == 0.0 and z.shape == (32,)
        dones.append(done)
    assert dones == [False, False, False, True]  # the original: done once frame_count > max_frames
    assert env.reset() is not None and env.frame_count == 0


def test_make_env_seed_repeats_the_dream(agent, paths):
    cfg = DreamConfig(initial_z_path=str(paths["initial_z"]))

    def run(seed):
        env = make_env("carracing", agent, seed=seed, cfg=cfg)
        z = env.reset()
        for _ in range(3):
            z = env.step(agent.get_action(z))[0]
        return z

    np.testing.assert_array_equal(run(11), run(11))
    assert not np.allclose(run(11), run(12))


# --- initial_z.json --------------------------------------------------------------------------------

def test_reset_reads_the_original_single_entry_file(tf_models):
    path = tf_models / "initial_z" / "initial_z.json"
    entries = load_initial_z(path)
    (mu,), (logvar,) = json.loads(path.read_text())
    assert len(entries) == 1
    np.testing.assert_array_equal(entries[0][0], np.array(mu) / 10000.0)
    np.testing.assert_array_equal(entries[0][1], np.array(logvar) / 10000.0)
    assert entries[0][1].min() < -3.0  # the file's ints really are value * 1e4 (logvar ~ -3.7 .. +2.7)


def test_reset_reads_a_multi_entry_file(agent, tmp_path):
    """rnn_train.py's layout: [mu of each entry, logvar of each entry]; reset picks an entry at random."""
    mu = [[k * 10000 + d for d in range(32)] for k in range(3)]
    logvar = [[-2 * 10000 * k - 1000] * 32 for k in range(3)]
    path = tmp_path / "initial_z.json"
    path.write_text(json.dumps([mu, logvar]))
    env = CarRacingDream(agent, load_initial_z(path))
    picked = set()
    for seed in range(20):
        env.seed(seed)
        z = env.reset()
        rng = np.random.RandomState(seed)
        k = rng.randint(0, 3)
        expected = np.array(mu[k]) / 1e4 + np.exp(np.array(logvar[k]) / 1e4 / 2.0) * rng.randn(32)
        np.testing.assert_allclose(z, expected, rtol=0, atol=1e-12)
        picked.add(k)
    assert picked == {0, 1, 2}


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("{not json", "not an initial_z JSON file"),
    (json.dumps([list(range(32)), list(range(32))]), "expected [mu list, logvar list]"),  # flat, not nested
    (json.dumps([[list(range(32))] * 2, [list(range(32))]]), "found shapes (2, 32) and (1, 32)"),
    (json.dumps([[list(range(31))], [list(range(31))]]), "of 32 numbers"),
    (json.dumps([[["a"] * 32], [[0] * 32]]), "of numbers"),
    (json.dumps([[], []]), "entries of 32 numbers"),
])
def test_bad_initial_z_is_one_line(tmp_path, content, message):
    path = tmp_path / "initial_z.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError) as e:
        load_initial_z(path)
    assert str(e.value).startswith(str(path)) and message in str(e.value) and "\n" not in str(e.value)


# --- frames and GIFs -------------------------------------------------------------------------------

def test_render_is_v_decoding_upscaled_x8(agent, paths, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = make_env("carracing", agent, seed=0, cfg=DreamConfig(initial_z_path=str(paths["initial_z"])))
    z = env.reset()
    small = np.round(agent.vae.decode(z.reshape(1, 32))[0] * 255.0).astype(np.uint8)
    np.testing.assert_array_equal(env.decode_obs(z), small)
    frame = env.render("rgb_array")
    assert frame.shape == (512, 512, 3) and frame.dtype == np.uint8
    assert np.abs(frame.astype(int) - bilinear_x8(small)).max() <= 1  # Pillow rounds to bytes between passes
    np.testing.assert_array_equal(env.render("human"), frame)  # the window (dummy video driver) shows the same
    env.close()


def test_closing_the_window_ends_the_dream(agent, paths, monkeypatch):
    import pygame

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = make_env("carracing", agent, seed=0, cfg=DreamConfig(initial_z_path=str(paths["initial_z"])))
    shown = []

    def close_at_third(frame):
        shown.append(frame)
        if len(shown) == 3:
            pygame.event.post(pygame.event.Event(pygame.QUIT))

    assert dream(agent, env, 50, record=close_at_third, show=True) == 4  # the QUIT is seen at the 4th frame
    env.close()


def test_temperature_must_be_positive(agent, paths):
    with pytest.raises(UserError, match="temperature 0: must be > 0"):
        CarRacingDream(agent, load_initial_z(paths["initial_z"]), temperature=0)


def test_dream_gif_headless(agent, paths, tmp_path):
    path = tmp_path / "out" / "dream.gif"
    n = dream_gif(agent, str(path), temperature=1.15, frames=7, seed=3, initial_z_path=str(paths["initial_z"]))
    gif = iio.imread(path)
    assert n == 4 and gif.shape[:3] == (4, CAPTION_HEIGHT + 256, 256)  # every 2nd of 7 frames, x4, a caption above
    caption = captioned(np.zeros((1, 256, 3), np.uint8), "dream of M at temperature 1.15")[:CAPTION_HEIGHT]
    assert np.abs(gif[0, :CAPTION_HEIGHT, :, :3].astype(int) - caption).mean() < 8 and caption.max() > 200
    again = tmp_path / "again.gif"
    dream_gif(agent, str(again), temperature=1.15, frames=7, seed=3, initial_z_path=str(paths["initial_z"]))
    assert again.read_bytes() == path.read_bytes()
    assert list(tmp_path.rglob("*.tmp*")) == []


def test_cli_writes_gif_headless(vae_json, paths, tmp_path):
    proc = run_script("dream_model.py", "--config", "smoke", "--vae_path", vae_json, "--rnn_path", paths["rnn"],
                      "--initial_z_path", paths["initial_z"], "--max_episode_length", 6, paths["params"], 3,
                      cwd=tmp_path)
    gif = iio.imread(tmp_path / "dream.gif")
    assert gif.shape[:3] == (3, CAPTION_HEIGHT + 256, 256)
    assert "seed 3" in proc.stdout and "dream of 6 frames" in proc.stdout and "wrote dream.gif" in proc.stdout


def test_cli_missing_file_is_one_line_exit_2(paths, tmp_path):
    proc = run_script("dream_model.py", "--initial_z_path", tmp_path / "missing.json", paths["params"],
                      cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == f"dream_model.py: error: {tmp_path}/missing.json: no such file"


@pytest.mark.parametrize("case", ["initial_z_foreign", "vae", "rnn_foreign", "params_foreign", "gif", "seed"])
def test_bad_input_is_one_line_exit_2(vae_json, paths, tmp_path, monkeypatch, capsys, case):
    """main() under cli.run, in-process (the subprocess path is tested above)."""
    (tmp_path / "file").write_text("x")
    args = {"--vae_path": vae_json, "--rnn_path": paths["rnn"], "--initial_z_path": paths["initial_z"]}
    positional = [paths["params"], 3]
    if case == "initial_z_foreign":
        args["--initial_z_path"], named = paths["params"], "best.json: expected [mu list, logvar list]"
    elif case == "vae":
        args["--vae_path"], named = tmp_path / "vae.json", "vae.json: no such file"
    elif case == "rnn_foreign":
        args["--rnn_path"], named = paths["initial_z"], "initial_z.json: expected a list of 4 weight arrays"
    elif case == "params_foreign":
        positional[0], named = paths["initial_z"], "initial_z.json: 3200 parameters, but exp_mode zh needs 867"
    elif case == "gif":
        args["--gif"], named = tmp_path / "file" / "sub" / "d.gif", "cannot write here"
    else:
        positional[1], named = -1, "seed -1: must be >= 0"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["dream_model.py", "--config", "smoke",
                                     *[str(x) for kv in args.items() for x in kv], *map(str, positional)])
    with pytest.raises(SystemExit) as e:
        run(dream_model.main)
    lines = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(lines) == 1
    assert lines[0].startswith("dream_model.py: error:") and named in lines[0], lines
    assert not (tmp_path / "dream.gif").exists()
