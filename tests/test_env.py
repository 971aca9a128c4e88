"""env.py: the original's frame processing bit for bit, and the gym 0.9.4-style API over CarRacing-v3."""
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, run_script
from gymnasium.envs.box2d.car_racing import PLAYFIELD, CarRacing
from PIL import Image

import env


def reference_process(frame):
    """The original's `_process_frame` (scipy 1.1 imresize of frame[:84] / 255, then the uint8
    `((1.0 - obs) * 255).round().astype(np.uint8)`), rebuilt from scipy 1.1's bytescale source:
    per-frame min..max over all channels, scale 255 / (max - min) (1 when flat), clip, + 0.5,
    truncate; Pillow bilinear 64x64; the cast wraps modulo 256 (as on x86-64), here in int64."""
    data = frame[:84, :, :].astype(np.float64) / 255.0
    cmin, cmax = data.min(), data.max()
    cscale = cmax - cmin
    if cscale == 0:
        cscale = 1
    scale = float(255 - 0) / cscale
    bytedata = (data - cmin) * scale + 0
    image = Image.frombytes("RGB", (96, 84), (bytedata.clip(0, 255) + 0.5).astype(np.uint8).tobytes())
    resized = np.array(image.resize((64, 64), resample=2), dtype=np.uint8)  # 2 = bilinear, imresize's default
    wrapped = np.round((1.0 - resized.astype(np.float64)) * 255).astype(np.int64) % 256
    return wrapped.astype(np.uint8)


def carracing_frames(seed, steps):
    """Raw 96x96 state pixels of a seeded Gymnasium episode: the reset frame then `steps` steps."""
    car = CarRacing(lap_complete_percent=1.0)
    rs = np.random.RandomState(seed)
    frames = [car.reset(seed=seed)[0]]
    for _ in range(steps):
        frames.append(car.step(np.array([rs.uniform(-1, 1), rs.uniform(0, 1), 0.0]))[0])
    car.close()
    return frames


def test_minus_one_wrap_matches_numpy_float_formula_on_all_bytes():
    v = np.arange(256, dtype=np.uint8)
    expected = np.round((1.0 - v.astype(np.float64)) * 255).astype(np.int64) % 256
    assert np.array_equal(env._minus_one_wrapped(v), expected.astype(np.uint8))
    assert env._minus_one_wrapped(v)[0] == 255 and env._minus_one_wrapped(v)[1] == 0


def synthetic_frames():
    rs = np.random.RandomState(0)
    frames = [rs.randint(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(5)]
    frames += [rs.randint(40, 200, (96, 96, 3), dtype=np.uint8)]  # stretched: min and max not 0/255
    frames += [np.zeros((96, 96, 3), np.uint8)]  # all black
    frames += [np.full((96, 96, 3), c, np.uint8) for c in (1, 102, 230, 255)]  # flat: scale 1
    flat_with_bar = np.full((96, 96, 3), 102, np.uint8)
    flat_with_bar[84:] = 0  # the indicator bar is cropped away, so still flat
    frames.append(flat_with_bar)
    grass = np.zeros((96, 96, 3), np.uint8)
    grass[...] = (102, 204, 102)
    grass[30:40, 10:20] = (102, 102, 102)  # road
    grass[50:53, 40:60] = (255, 255, 255)  # white curb: max 255
    grass[60:64, 44:50] = (204, 0, 0)  # car
    frames.append(grass)
    return frames


@pytest.mark.parametrize("index", range(len(synthetic_frames())))
def test_process_frame_synthetic(index, compiled):
    frame = synthetic_frames()[index]
    out = env._process_frame(frame, compiled)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert np.array_equal(out, reference_process(frame))


def test_process_frame_flat_frame_is_all_white(compiled):
    # max == min: bytescale maps everything to 0, which the wrap turns into 255
    assert (env._process_frame(np.full((96, 96, 3), 77, np.uint8), compiled) == 255).all()


def test_process_frame_real_carracing_frames_including_zoom(compiled):
    frames = carracing_frames(seed=3, steps=60)  # the first ~50 steps are the zoom-in animation
    for t, frame in enumerate(frames):
        assert np.array_equal(env._process_frame(frame, compiled), reference_process(frame)), f"frame {t}"
    assert len({env._process_frame(f, compiled).tobytes() for f in frames[:50]}) > 10  # the zoom changes the picture


def test_reset_and_step_follow_the_original_api_and_process_gymnasium_frames():
    raw = carracing_frames(seed=5, steps=3)
    e = env.make_env(seed=5)
    obs = e.reset()
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert e.observation_space.shape == (64, 64, 3)
    assert np.array_equal(obs, reference_process(raw[0]))
    rs = np.random.RandomState(5)
    for t in range(1, 4):
        result = e.step(np.array([rs.uniform(-1, 1), rs.uniform(0, 1), 0.0]))
        assert isinstance(result, tuple) and len(result) == 4
        obs, reward, done, info = result
        assert np.array_equal(obs, reference_process(raw[t]))
        assert isinstance(reward, float) and done is False and isinstance(info, dict)
    e.close()


def rollout(seed, steps=15):
    e = env.make_env(seed=seed)
    frames, rewards = [e.reset()], []
    for t in range(steps):
        obs, reward, done, _ = e.step(np.array([0.2 * np.sin(t), 0.8, 0.0]))
        frames.append(obs)
        rewards.append(reward)
    e.close()
    return np.array(frames), np.array(rewards)


def test_same_seed_same_episode_different_seed_different_track():
    frames_a, rewards_a = rollout(11)
    frames_b, rewards_b = rollout(11)
    frames_c, _ = rollout(12)
    assert np.array_equal(frames_a, frames_b) and np.array_equal(rewards_a, rewards_b)
    assert not np.array_equal(frames_a, frames_c)


def test_seed_then_consecutive_resets_continue_the_track_generator():
    car = CarRacing(lap_complete_percent=1.0)
    expected = [car.reset(seed=21)[0], car.reset()[0]]  # Gymnasium: seed once, then the next track
    e = env.make_env(seed=21)
    got = [e.reset(), e.reset()]
    assert np.array_equal(got[0], reference_process(expected[0]))
    assert np.array_equal(got[1], reference_process(expected[1]))
    assert not np.array_equal(got[0], got[1])
    e.seed(21)  # seeding again restarts the sequence
    assert np.array_equal(e.reset(), got[0])


@pytest.mark.parametrize("full_episode", [False, True])
def test_leaving_the_playfield_ends_the_episode_unless_full_episode(full_episode):
    e = env.make_env(seed=0, full_episode=full_episode)
    e.reset()
    _, _, done, _ = e.step(np.array([0.0, 0.5, 0.0]))
    assert done is False
    e.car.hull.position = (PLAYFIELD + 10, 0)  # Gymnasium terminates with reward -100 out here
    _, reward, done, _ = e.step(np.array([0.0, 0.5, 0.0]))
    assert reward == -100
    assert done is (not full_episode)
    e.close()


@pytest.mark.parametrize("full_episode", [False, True])
def test_visiting_every_tile_ends_the_episode_unless_full_episode(full_episode):
    e = env.make_env(seed=0, full_episode=full_episode)
    e.reset()
    e.tile_visited_count = len(e.track)
    _, _, done, _ = e.step(np.array([0.0, 0.0, 0.0]))
    assert done is (not full_episode)
    e.close()


def test_lap_complete_percent_defaults_to_every_tile():
    e = env.make_env()
    assert e.lap_complete_percent == 1.0
    assert env.make_env(lap_complete_percent=0.95).lap_complete_percent == 0.95


def test_env_module_does_not_import_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, env; print('torch' in sys.modules)"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_driving_by_hand_without_display_is_one_clear_error():
    proc = run_script("env.py", check=False)  # conftest sets SDL_VIDEODRIVER=dummy: no display
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "display" in lines[0] and "Traceback" not in proc.stderr


def test_render_mode_draws_gymnasium_window_each_step():
    # In a subprocess: closing a "human" env calls pygame.quit(), which other tests must not see.
    code = ("import numpy as np, env\n"
            "e = env.make_env(seed=1, render_mode=True)\n"
            "obs = e.reset()\n"
            "obs, r, done, info = e.step(np.array([0.0, 1.0, 0.0]))\n"
            "print(e.render_mode, e.screen is not None, obs.shape)\n"
            "e.close()\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["human", "True", "(64,", "64,", "3)"]


def test_renderers_through_make_env():
    """The default renderer is "fast" and gives the same observations and rewards as Gymnasium's own
    drawing; "approx" stays close after the processing. (renderer.py's own tests cover raw frames.)"""
    envs = {name: env.make_env(seed=3, full_episode=True, renderer=name) for name in ("gymnasium", "fast", "approx")}
    assert env.make_env().renderer.__class__.__name__ == "FastCompiled" and env.make_env().compiled
    assert env.make_env(compiled=False).renderer.__class__.__name__ == "Fast" and not env.make_env(compiled=False).compiled
    first = {name: e.reset() for name, e in envs.items()}
    rng = np.random.default_rng(0)
    errors = []
    for t in range(120):
        action = np.array([np.sin(t / 15.0), 0.6, 0.0]) + rng.normal(0, 0.1, 3).clip(0, None) * [1, 1, 0]
        steps = {name: e.step(action) for name, e in envs.items()}
        np.testing.assert_array_equal(steps["fast"][0], steps["gymnasium"][0])
        assert steps["fast"][1] == steps["gymnasium"][1]
        errors.append(np.abs(steps["approx"][0].astype(int) - steps["gymnasium"][0]).mean())
    np.testing.assert_array_equal(first["fast"], first["gymnasium"])
    assert np.mean(errors[60:]) < 2.0  # after the zoom-in; measured ~0.3 (README)
