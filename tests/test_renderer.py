"""renderer.py against Gymnasium's own CarRacing-v3 rendering (run side by side, same seeds and actions)."""
import gymnasium
import numpy as np
import pygame
import pytest
from gymnasium.envs.box2d.car_racing import PLAYFIELD, CarRacing
from PIL import Image

import renderer
from config import EnvConfig
from plumbing.cli import UserError


class Rendered(CarRacing):
    """Gymnasium's CarRacing whose state pixels come from `r` (what env.py's wrapper does)."""

    def __init__(self, r, **kwargs):
        super().__init__(**kwargs)
        self.r = r

    def _render(self, mode):
        if mode == "state_pixels":
            return self.r.state_pixels(self)
        return super()._render(mode)


def random_policy(rng, t):
    return np.array([rng.uniform(-1, 1), rng.uniform(0, 1), rng.uniform(0, 1)])


def agent_policy(rng, t):
    """Smooth steering with gas, mostly on the road at first, drifting off it later."""
    return np.array([np.sin(t / 40.0), 1.0 if t % 60 < 45 else 0.0, 0.0])


def straight_policy(rng, t):
    """Half gas, no steering: leaves the road, reaches the playfield edge and ends the episode (~270 steps)."""
    return np.array([0.0, 0.5, 0.0])


def side_by_side(ours, theirs, seed, steps, policy):
    """Reset both envs to `seed` and step them with the same actions; yields (ours, theirs, env) per frame."""
    rng = np.random.default_rng(seed)
    a, _ = ours.reset(seed=seed)
    b, _ = theirs.reset(seed=seed)
    yield a, b, theirs
    for t in range(steps):
        action = policy(rng, t)
        a, reward_a, end_a, _, _ = ours.step(action)
        b, reward_b, end_b, _, _ = theirs.step(action)
        assert (reward_a, end_a) == (reward_b, end_b)
        yield a, b, theirs
        if end_b:
            return


def make_fast(compiled):
    r = renderer.make("fast", None, compiled)
    assert type(r) is (renderer.FastCompiled if compiled else renderer.Fast)
    return r


def assert_identical(runs, compiled, domain_randomize=False):
    """Every frame of `runs` [(seed, steps, policy)], all on the same two env objects, is identical."""
    ours = Rendered(make_fast(compiled), domain_randomize=domain_randomize)
    theirs = CarRacing(domain_randomize=domain_randomize)
    frames = 0
    for seed, steps, policy in runs:
        for t, (a, b, _) in enumerate(side_by_side(ours, theirs, seed, steps, policy)):
            assert a.shape == (96, 96, 3) and a.dtype == np.uint8
            if not np.array_equal(a, b):
                diff = np.abs(a.astype(int) - b.astype(int))
                pytest.fail(f"seed {seed}, frame {t}: {np.count_nonzero(diff.any(axis=2))} pixels differ "
                            f"(max {diff.max()}); the fast renderer no longer matches this Gymnasium/pygame")
            frames += 1
    return ours, theirs, frames


def test_fast_is_pixel_identical_with_random_actions_and_a_new_track(compiled):
    """Zoom-in included; seed 1 is a reset to a new track on the same env objects."""
    _, _, frames = assert_identical([(0, 300, random_policy), (1, 300, random_policy)], compiled)
    assert frames == 602


def test_fast_is_pixel_identical_driving_off_the_road_and_out_of_the_playfield(compiled):
    ours, theirs, frames = assert_identical([(2, 1000, straight_policy)], compiled)
    x, y = theirs.car.hull.position
    assert frames < 1000 and max(abs(x), abs(y)) > PLAYFIELD  # the episode really ended off the playfield
    assert_identical([(3, 150, agent_policy)], compiled)  # and a fresh pair keeps matching after such an episode


def test_fast_is_pixel_identical_with_domain_randomization(compiled):
    assert_identical([(4, 120, random_policy), (5, 60, agent_policy)], compiled, domain_randomize=True)


def test_fast_is_pixel_identical_for_a_full_agent_like_episode(compiled):
    """The longer check (~15 s on a quiet core): 1000 steps of smooth steering and gas."""
    assert_identical([(6, 1000, agent_policy)], compiled)


def test_fast_is_pixel_identical_when_an_indicator_bar_leaves_its_box(compiled):
    """Wheel spin above 390 rad/s draws an ABS bar above the indicator box, into the scene."""
    ours, theirs = Rendered(make_fast(compiled)), CarRacing()
    for _ in side_by_side(ours, theirs, 7, 60, agent_policy):
        pass
    normal = theirs._render("state_pixels")
    for env in (ours, theirs):
        env.car.wheels[0].omega, env.car.wheels[3].omega = 450.0, -450.0
    a, b = ours._render("state_pixels"), theirs._render("state_pixels")
    assert not np.array_equal(b[:84], normal[:84])  # the bar did reach the scene rows
    assert np.array_equal(a, b)


def test_compiled_renderers_share_their_surfaces_yet_each_env_gets_its_own_frames():
    """FastCompiled's envs in one process draw on shared surfaces (renderer._SCRATCH): stepped
    interleaved on different tracks and actions, each still matches its own Gymnasium env."""
    ours = [Rendered(make_fast(True)) for _ in range(3)]
    theirs = [CarRacing() for _ in range(3)]
    assert ours[0].r.canvas is ours[2].r.canvas
    runs = [side_by_side(a, b, seed, 120, policy)
            for a, b, seed, policy in zip(ours, theirs, (0, 1, 2), (random_policy, agent_policy, straight_policy))]
    for t, frames in enumerate(zip(*runs)):
        for i, (a, b, _) in enumerate(frames):
            assert np.array_equal(a, b), f"env {i}, frame {t}"
    assert t == 120


@pytest.mark.parametrize("scale", [0.25, 0.13])
def test_approx_compiled_gives_approx_frames(scale):
    """The compiled approx renderer draws the same bytes as pygame's at any canvas scale, zoom-in
    and the playfield edge included."""
    import kernels
    assert kernels.load()
    ours, theirs = Rendered(renderer.make("approx", scale, True)), Rendered(renderer.make("approx", scale, False))
    assert type(ours.r) is renderer.ApproxCompiled
    frames = 0
    for seed, steps, policy in ((0, 200, random_policy), (2, 1000, straight_policy)):
        for a, b, _ in side_by_side(ours, theirs, seed, steps, policy):
            assert np.array_equal(a, b), f"seed {seed}, frame {frames}"
            frames += 1
    assert frames > 400


def wm_process(frame):
    """The original's _process_frame: rows 0:84, /255, global min-max bytescale to uint8 (+0.5),
    PIL bilinear 64x64, then ((1 - v) * 255) cast to uint8, i.e. v -> (v - 1) mod 256."""
    x = frame[:84].astype(np.float64) / 255.0
    lo, hi = x.min(), x.max()
    scaled = ((x - lo) * (255.0 / ((hi - lo) or 1.0))).clip(0, 255) + 0.5
    small = np.asarray(Image.fromarray(scaled.astype(np.uint8)).resize((64, 64), Image.BILINEAR))
    return (small.astype(np.int64) - 1) % 256


def approx_errors(scales, runs):
    """Per scale, the mean abs error after the World Models processing, approx vs Gymnasium, over
    the frames after the 1 s zoom-in (during it the per-frame min-max stretch of the processing
    magnifies small differences in the tiny car and kerbs; bench/render.py reports those frames)."""
    theirs = CarRacing()
    ours = {scale: Rendered(renderer.make("approx", scale)) for scale in scales}
    errors = {scale: [] for scale in scales}
    for seed, steps, policy in runs:
        rng = np.random.default_rng(seed)
        frames = {scale: env.reset(seed=seed)[0] for scale, env in ours.items()}
        ref = theirs.reset(seed=seed)[0]
        for t in range(steps):
            action = policy(rng, t)
            frames = {scale: env.step(action)[0] for scale, env in ours.items()}
            ref = theirs.step(action)[0]
            if t >= 50:
                for scale, frame in frames.items():
                    errors[scale].append(np.abs(wm_process(frame) - wm_process(ref)).mean())
    return {scale: np.mean(e) for scale, e in errors.items()}


def test_approx_error_after_world_models_processing_is_small():
    """bench/render.py measures a mean of ~0.3-0.4 (of 255) at scale 0.2-0.25 after the zoom-in;
    1.0 leaves room for other tracks, yet a canvas too coarse to be useful (0.1, whose edges are
    5 full-size pixels wide; ~1.5-1.9) fails it, so the bound does tell good from bad."""
    scale = EnvConfig().approx_scale
    errors = approx_errors([scale, 0.1], [(0, 180, random_policy), (1, 180, agent_policy)])
    assert 0 < errors[scale] < 1.0 < errors[0.1]


@pytest.mark.parametrize("name", ["fast", "approx"])
def test_output_is_a_writeable_contiguous_frame(compiled, name):
    env = Rendered(renderer.make(name, 0.25, compiled))
    obs, _ = env.reset(seed=0)
    assert obs.flags.writeable and obs.flags.c_contiguous and obs.shape == (96, 96, 3) and obs.dtype == np.uint8
    assert Rendered(renderer.make(name, 0.25, compiled))._render("state_pixels") is None  # before reset, as Gymnasium


def test_gymnasium_renderer_is_gymnasiums_code():
    ours, theirs = Rendered(renderer.make("gymnasium", None)), CarRacing()
    for a, b, _ in side_by_side(ours, theirs, 0, 5, random_policy):
        assert np.array_equal(a, b)


def test_installed_versions_are_the_verified_ones():
    """If this fails after an upgrade, re-run this file with VERIFIED updated before trusting "fast"."""
    assert gymnasium.__version__ == renderer.VERIFIED["gymnasium"]
    assert pygame.version.ver == renderer.VERIFIED["pygame-ce"]


@pytest.mark.parametrize("module, attribute", [(gymnasium, "__version__"), (pygame.version, "ver")])
def test_other_versions_are_refused_with_a_hint(monkeypatch, module, attribute):
    monkeypatch.setattr(module, attribute, "9.9.9")
    for name in ("fast", "approx"):
        with pytest.raises(UserError, match="9.9.9.*--renderer gymnasium"):
            renderer.make(name, 0.2)
    renderer.make("gymnasium", 0.2)


def test_bad_options_are_refused():
    with pytest.raises(UserError, match="--renderer exact"):
        renderer.make("exact", 0.2)
    with pytest.raises(UserError, match="--approx_scale 2"):
        renderer.make("approx", 2)
