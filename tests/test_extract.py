"""extract.py end to end: the original's random-controller data, seeds, MPI split, resume, errors."""
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, run_script
from gymnasium.envs.box2d.car_racing import CarRacing
from test_env import reference_process

FRAMES = 10


def expected_seed(seed, index):
    """The documented bijection from (--seed, global episode index) to the episode seed."""
    return (742938285 * index + 950706376 * (seed + 1)) % (2**31 - 1)


def reference_actions(seed, frames):
    """The original's extract.py policy with an untrained V (z ~ N(0, I)) and M (h = 0):
    np.random.seed(seed); stdev = rand() * 0.01; controller params = Cauchy(867) * stdev
    as [b(3), W(288 x 3)]; each step a = tanh([z, 0] @ W + b), gas = (a + 1) / 2, brake = clip."""
    rs = np.random.RandomState(seed)
    stdev = rs.rand() * 0.01
    params = rs.standard_cauchy(867) * stdev
    b, w = params[:3], params[3:].reshape(288, 3)
    actions = []
    for _ in range(frames):
        h = np.concatenate([rs.randn(32), np.zeros(256)])
        a = np.tanh(h @ w + b)
        actions.append([a[0], (a[1] + 1.0) / 2.0, min(max(a[2], 0.0), 1.0)])
    return np.array(actions)


def load(folder):
    out = {}
    for name in sorted(os.listdir(folder)):
        with np.load(os.path.join(folder, name)) as f:
            out[name] = {k: f[k] for k in f.files}
    return out


@pytest.fixture(scope="module")
def one_and_two_ranks(tmp_path_factory):
    """The same 16 episodes recorded by 1 rank x 16 and by 2 MPI ranks x 8."""
    tmp = tmp_path_factory.mktemp("extract")
    run_script("extract.py", "--max_trials", 16, "--max_frames", FRAMES, "--seed", 3, "--dir_name", tmp / "one")
    run_script("extract.py", "--max_trials", 8, "--max_frames", FRAMES, "--seed", 3, "--dir_name", tmp / "two", mpi=2)
    return load(tmp / "one"), load(tmp / "two")


def test_one_rank_and_two_ranks_write_identical_files(one_and_two_ranks):
    one, two = one_and_two_ranks
    assert sorted(one) == sorted(f"{expected_seed(3, i)}.npz" for i in range(16))
    assert sorted(two) == sorted(one)
    for name in one:
        assert set(one[name]) == {"obs", "action"}
        assert np.array_equal(one[name]["obs"], two[name]["obs"])
        assert np.array_equal(one[name]["action"], two[name]["action"])


def test_files_hold_full_length_uint8_frames_and_float16_actions(one_and_two_ranks):
    for episode in one_and_two_ranks[0].values():
        assert episode["obs"].shape == (FRAMES, 64, 64, 3) and episode["obs"].dtype == np.uint8
        assert episode["action"].shape == (FRAMES, 3) and episode["action"].dtype == np.float16


def test_actions_are_the_original_random_controller(one_and_two_ranks):
    for name, episode in one_and_two_ranks[0].items():
        seed = int(name.split(".")[0])
        assert np.array_equal(episode["action"], reference_actions(seed, FRAMES).astype(np.float16)), name


def test_frames_are_the_processed_carracing_frames_of_the_seeded_track(one_and_two_ranks):
    name, episode = sorted(one_and_two_ranks[0].items())[0]
    seed = int(name.split(".")[0])
    car = CarRacing(lap_complete_percent=1.0)
    frame = car.reset(seed=seed)[0]
    for t, action in enumerate(reference_actions(seed, FRAMES)):
        assert np.array_equal(episode["obs"][t], reference_process(frame)), f"frame {t}"
        frame = car.step(action)[0]
    car.close()


def test_policy_statistics_are_sane(one_and_two_ranks):
    actions = np.concatenate([e["action"] for e in one_and_two_ranks[0].values()]).astype(np.float64)
    steer, gas, brake = actions.T
    assert abs(gas.mean() - 0.5) < 0.1  # gas = (tanh + 1) / 2 around a small random bias
    assert (gas > 0).all() and (gas < 1).all()
    assert (brake >= 0).all() and (brake <= 1).all()
    assert 0.2 < (brake > 0).mean() < 0.8  # clip(tanh, 0, 1): zero about half the time
    assert (np.abs(steer) <= 1).all() and abs(steer.mean()) < 0.3
    assert len({tuple(a) for a in actions}) == len(actions)  # fresh noise every step


def test_resume_skips_complete_files_and_regenerates_missing_or_broken_ones(tmp_path):
    folder = tmp_path / "record"
    args = ("extract.py", "--max_trials", 3, "--max_frames", FRAMES, "--dir_name", folder)
    run_script(*args)
    first = load(folder)
    names = sorted(first)
    mtimes = {n: os.stat(folder / n).st_mtime_ns for n in names}

    proc = run_script(*args)
    assert "0 episodes recorded, 3 already complete" in proc.stdout
    assert {n: os.stat(folder / n).st_mtime_ns for n in names} == mtimes

    os.remove(folder / names[0])
    (folder / names[1]).write_bytes(b"not a zip file")
    proc = run_script(*args)
    assert "2 episodes recorded, 1 already complete" in proc.stdout
    assert os.stat(folder / names[2]).st_mtime_ns == mtimes[names[2]]
    again = load(folder)
    assert sorted(again) == names
    for n in names:
        assert all(np.array_equal(first[n][k], again[n][k]) for k in ("obs", "action"))

    run_script("extract.py", "--max_trials", 3, "--max_frames", FRAMES + 2, "--dir_name", folder)
    longer = load(folder)
    assert all(longer[n]["obs"].shape[0] == FRAMES + 2 for n in names)  # wrong length: recorded again
    assert np.array_equal(longer[names[0]]["action"][:FRAMES], first[names[0]]["action"])
    assert sorted(os.listdir(folder)) == names  # no temporary files left behind


@pytest.mark.parametrize("rank_with_work", [0, 1])
def test_mpi_resume_with_uneven_work_finishes(tmp_path, rank_with_work):
    folder = tmp_path / "record"
    args = ("extract.py", "--max_trials", 2, "--max_frames", FRAMES, "--dir_name", folder)
    run_script(*args, mpi=2, timeout=120)
    for index in (2 * rank_with_work, 2 * rank_with_work + 1):  # only this rank has episodes left
        os.remove(folder / f"{expected_seed(0, index)}.npz")
    proc = run_script(*args, mpi=2, timeout=120)
    assert "2 episodes recorded, 2 already complete" in proc.stdout
    assert len(os.listdir(folder)) == 4


def one_line_error(proc):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("extract.py: error: "), proc.stderr
    return lines[0]


def test_bad_arguments_give_one_line_errors(tmp_path):
    line = one_line_error(run_script("extract.py", "--max_trials", 0, "--dir_name", tmp_path, check=False))
    assert "--max_trials 0" in line
    line = one_line_error(run_script("extract.py", "--no_such_flag", 1, check=False))
    assert "--no_such_flag" in line
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("mpi", [0, 2])
def test_unwritable_dir_gives_one_line_error(tmp_path, mpi):
    (tmp_path / "somefile").write_text("x")
    bad = tmp_path / "somefile" / "record"
    line = one_line_error(run_script("extract.py", "--max_trials", 1, "--max_frames", 5, "--dir_name", bad,
                                     mpi=mpi, check=False))
    assert str(bad) in line


def test_help_lists_the_flags():
    out = run_script("extract.py", "--help").stdout
    for flag in ("--max_trials", "--max_frames", "--dir_name", "--seed", "--config", "--lap_complete_percent"):
        assert flag in out


def test_extract_does_not_import_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, extract; print('torch' in sys.modules)"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_record_rewards_stores_the_envs_reward_and_done_per_step(tmp_path):
    """--record_rewards: reward[t] is what Gymnasium's CarRacing pays for action[t] on the seeded
    track, done[t] its terminated; without the option the files keep the original's two arrays."""
    run_script("extract.py", "--max_trials", 2, "--max_frames", 40, "--record_rewards", "--dir_name", tmp_path / "r")
    files = load(tmp_path / "r")
    for name, episode in files.items():
        assert set(episode) == {"obs", "action", "reward", "done"}
        assert episode["reward"].dtype == np.float32 and episode["reward"].shape == (40,)
        assert episode["done"].dtype == np.bool_ and episode["done"].shape == (40,)
        seed = int(name.split(".")[0])
        car = CarRacing(lap_complete_percent=1.0)
        car.reset(seed=seed)
        expected = [car.step(a)[1:3] for a in reference_actions(seed, 40)]
        car.close()
        np.testing.assert_array_equal(episode["reward"], np.float32([r for r, _ in expected]))
        np.testing.assert_array_equal(episode["done"], [d for _, d in expected])
        assert episode["reward"][0] > 0  # the first tile under the car pays on the first step


def test_a_file_without_rewards_is_recorded_again_with_record_rewards(tmp_path):
    folder = tmp_path / "record"
    run_script("extract.py", "--max_trials", 1, "--max_frames", FRAMES, "--dir_name", folder)
    (name,) = os.listdir(folder)
    assert set(load(folder)[name]) == {"obs", "action"}
    proc = run_script("extract.py", "--max_trials", 1, "--max_frames", FRAMES, "--dir_name", folder, "--record_rewards", 1)
    assert "1 episodes recorded, 0 already complete" in proc.stdout
    assert set(load(folder)[name]) == {"obs", "action", "reward", "done"}


def test_reward_recorder_writes_its_row_and_forwards_the_rest():
    from extract import RewardRecorder, ended

    class Env:
        np_random = None

        def reset(self):
            return "obs0"

        def step(self, action):
            return "obs", float(action), False, {"lap_finished": False} if action == 3 else {}

    env, reward, done = Env(), np.zeros(3, np.float32), np.zeros(3, bool)
    rec = RewardRecorder(env, reward, done)
    rec.np_random = "tracks"
    assert env.np_random == "tracks" and rec.reset() == "obs0"
    for a in (1, 2, 3):
        rec.step(a)
    np.testing.assert_array_equal(reward, [1, 2, 3])
    np.testing.assert_array_equal(done, [False, False, True])
    assert ended({"lap_finished": True}) and not ended({})
