"""train.py and model.py's CLI end to end at tiny scale: the original's packets, its five logs in
its exact JSON layouts, exact resume after a kill, a failing worker ending the job with one
clear line, and `model.py norender` on random parameters."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import MPIEXEC, REPO, run_script, write_random_agent

from files.train_logs import LAYOUTS
from train import decode_result_packet, decode_solution_packet, encode_result_packet, encode_solution_packets

TINY = ["--config", "smoke", "--max_episode_length", "20", "--max_generations", "4"]  # 2 workers x 2 trials
BASE = "carracing.cma.1.4"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with random vae/vae.json and rnn/rnn.json, as train.py and model.py expect."""
    return write_random_agent(tmp_path_factory.mktemp("train"))


@pytest.fixture(scope="module")
def full_run(workdir):
    """An uninterrupted 4-generation run (evaluations at generations 2 and 4)."""
    run_script("train.py", *TINY, "--log_dir", "full", cwd=workdir, mpi=3)
    return workdir / "full"


def load_logs(folder):
    return {s: json.loads((folder / (BASE + s)).read_text()) for s in LAYOUTS}


def test_packets_round_trip():
    rng = np.random.default_rng(0)
    solutions = rng.normal(size=(4, 7))
    packets = encode_solution_packets([11, 22, 11, 22], solutions, num_worker=2, train_mode=1, max_len=-1)
    assert [p.dtype for p in packets] == [np.int32] * 2 and [p.size for p in packets] == [24, 24]
    records = decode_solution_packet(packets[1], num_worker_trial=2)
    assert [r[:5] for r in records] == [(2, 2, 11, 1, -1), (2, 3, 22, 1, -1)]
    np.testing.assert_array_equal(records[0][5], np.round(solutions[2] * 1e4) / 1e4)  # quantized to 1e-4
    result = encode_result_packet([(2, 2, -12.345678, 41.99999), (2, 3, 7.5, 0.0)])
    assert result.dtype == np.int32
    np.testing.assert_array_equal(result, [2, 2, -123456, 419999, 2, 3, 75000, 0])  # truncated toward zero
    assert decode_result_packet(result, 2) == [(2, 2, -12.3456, 41.9999), (2, 3, 7.5, 0.0)]


def test_two_workers_write_the_originals_five_logs(full_run):
    for suffix, options in LAYOUTS.items():
        text = (full_run / (BASE + suffix)).read_text()
        assert json.dumps(json.loads(text), **options) == text, suffix  # the original's exact layout
    logs = load_logs(full_run)
    hist = logs[".hist.json"]
    assert [row[0] for row in hist] == [1, 2, 3, 4] and all(len(row) == 9 for row in hist)
    for t, secs, mean, lo, hi, std, rms, steps, max_steps in hist:
        assert lo <= mean <= hi and std >= 0 and 0.09 < rms < 0.12 and steps == 20.0 and max_steps == 20
        assert all(round(v, 2) == v for v in (mean, lo, hi, std))
    assert [row[0] for row in logs[".log.json"]] == [2, 4]
    assert [row[0] for row in logs[".hist_best.json"]] == [2, 4]
    t, secs, *rest = logs[".hist_best.json"][0]
    assert rest[0::2] == ["improvement", "curr", "prev", "best"]
    assert rest[5] == hist[0][2]  # the first "prev" is generation 1's mean reward, as the original
    params, best = logs[".best.json"]
    assert len(params) == 867 and best == max(r[1] for r in logs[".log.json"])
    assert params == next(r[2] for r in logs[".log.json"] if r[1] == best)
    assert len(logs[".json"]) == 1 and len(logs[".json"][0]) == 867
    assert all(round(v, 4) == v for v in logs[".json"][0])


def test_original_logs_use_these_layouts(tf_models):
    for suffix in (".json", ".hist.json", ".hist_best.json", ".best.json"):
        text = (tf_models / "log" / ("carracing.cma.16.64" + suffix)).read_text()
        assert json.dumps(json.loads(text), **LAYOUTS[suffix]) == text, suffix


def kill_when(cmd, cwd, ready):
    """Start `cmd` in its own process group and SIGKILL the group as soon as `ready()` holds."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline = time.time() + 120
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ready(), "the run ended before the instant it was to be killed at"


def test_kills_at_several_instants_resume_to_the_same_logs(workdir, full_run):
    """SIGKILL right after generation 1's checkpoint, inside generation 2's evaluation and in
    generation 3; then a kill between a checkpoint and its logs (the logs removed by hand).
    Each time --resume continues, and the logs end as the uninterrupted run's."""
    folder = workdir / "killed"
    cmd = [MPIEXEC, "-n", "3", sys.executable, str(REPO / "train.py"), *TINY, "--log_dir", "killed"]
    rows = lambda suffix: len(json.loads((folder / (BASE + suffix)).read_text())) if (folder / (BASE + suffix)).exists() else 0  # noqa: E731
    ckpt = folder / (BASE + ".checkpoint.pt")
    kill_when(cmd, workdir, ckpt.exists)
    fresh = run_script("train.py", *TINY, "--log_dir", "killed", cwd=workdir, check=False)
    assert fresh.returncode == 2 and "pass --resume" in fresh.stderr  # never clobbers a run
    kill_when(cmd + ["--resume"], workdir, lambda: rows(".hist.json") == 2 and rows(".log.json") == 0)
    kill_when(cmd + ["--resume"], workdir, lambda: rows(".hist.json") == 3)
    for suffix in (".json", ".hist.json", ".log.json", ".best.json", ".hist_best.json"):
        (folder / (BASE + suffix)).unlink()
    out = run_script("train.py", *TINY, "--log_dir", "killed", "--resume", cwd=workdir).stdout
    assert "resuming" in out and out.count("gen 4 ") == 1
    resumed, full = load_logs(folder), load_logs(full_run)
    drop_seconds = lambda rows: [row[:1] + row[2:] for row in rows]  # noqa: E731
    for suffix in (".hist.json", ".hist_best.json"):
        assert drop_seconds(resumed[suffix]) == drop_seconds(full[suffix]), suffix
    for suffix in (".json", ".best.json", ".log.json"):
        assert resumed[suffix] == full[suffix], suffix


def test_refusals_come_before_mpi_and_leave_nothing(workdir, tmp_path):
    log = tmp_path / "log"
    proc = run_script("train.py", *TINY, "--log_dir", log, "--resume", cwd=workdir, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().endswith(
        "carracing.cma.1.4.checkpoint.pt: no checkpoint to resume from (run without --resume to start)")
    proc = run_script("train.py", *TINY, "--log_dir", log, "--vae_path", tmp_path / "none.json", cwd=workdir,
                      check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "none.json: no such file" in proc.stderr
    assert "Abort" not in proc.stderr and not log.exists() and os.listdir(tmp_path) == []


def test_init_from_starts_the_mean_at_a_saved_controller(workdir, full_run, tmp_path):
    params, _ = json.loads((full_run / (BASE + ".best.json")).read_text())
    run_script("train.py", *TINY, "--max_generations", "1", "--sigma_init", "1e-7", "--log_dir", tmp_path / "log",
               "--init_from", full_run / (BASE + ".best.json"), cwd=workdir, mpi=3)
    (mean,) = json.loads((tmp_path / "log" / (BASE + ".json")).read_text())
    assert np.abs(np.array(params)).max() > 0.01  # a trained controller, far from the original's zeros
    np.testing.assert_allclose(mean, params, atol=1.01e-4)  # moved by ~sigma, then quantized to 1e-4
    (tmp_path / "short.json").write_text("[[0.5, 0.25], 12.0]")
    for extra, message in (([], "short.json: 2 parameters, but exp_mode zh needs 867"),
                           (["-o", "ga"], "not with --optimizer ga, whose population has no mean")):
        proc = run_script("train.py", *TINY, *extra, "--log_dir", tmp_path / "refused", "--init_from",
                          tmp_path / "short.json", cwd=workdir, check=False)
        assert proc.returncode == 2 and proc.stderr.strip().endswith(message), proc.stderr
        assert "Traceback" not in proc.stderr and not (tmp_path / "refused").exists()


def test_a_failing_worker_ends_the_job_with_one_clear_line(workdir, tmp_path):
    bad = tmp_path / "vae.json"
    bad.write_text("[1, 2")
    start = time.monotonic()
    proc = run_script("train.py", *TINY, "--log_dir", str(tmp_path / "log"), "--vae_path", bad, cwd=workdir,
                      mpi=3, check=False, timeout=120)
    assert time.monotonic() - start < 60
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("train.py: error:")]
    assert len(errors) == 1, proc.stderr
    assert len(errors) == 1 and "worker" in errors[0] and "vae.json: not a weight JSON file" in errors[0]
    assert "Traceback" not in proc.stderr


def test_self_launched_job_failure_is_one_line_without_mpich_banners(workdir, tmp_path):
    bad = tmp_path / "vae.json"
    bad.write_text("[1, 2")
    proc = run_script("train.py", *TINY, "--log_dir", tmp_path / "log", "--vae_path", bad, cwd=workdir, check=False,
                      timeout=120)  # train.py starts mpiexec itself
    assert proc.returncode == 2 and "Abort(" not in proc.stderr and "=====" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()  # one line, whichever worker failed first
    assert line.startswith("train.py: error: worker ") and f"{bad}: not a weight JSON file" in line


def test_a_population_pycma_cannot_sample_is_refused(workdir, tmp_path):
    proc = run_script("train.py", *TINY, "-t", "1", "--log_dir", tmp_path / "log", cwd=workdir, check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == \
        "train.py: error: -n 2 -t 1: population 2, but cma needs at least 3 (raise --num_worker_trial)"


def test_wrong_process_count_and_missing_weights_are_user_errors(workdir, tmp_path):
    proc = run_script("train.py", *TINY, "-n", "4", cwd=workdir, mpi=3, check=False)
    assert proc.returncode == 2 and "-n 4 needs 5 MPI processes" in proc.stderr
    proc = run_script("train.py", *TINY, "--log_dir", str(tmp_path), "--rnn_path", "nowhere.json", cwd=workdir,
                      mpi=3, check=False)
    assert proc.returncode != 0 and "nowhere.json: no such file" in proc.stderr


def test_model_norender_on_random_parameters_is_repeatable(workdir):
    args = ["norender", "--config", "smoke", "--num_episode", "2", "--max_episode_length", "15", "--seed", "5"]
    runs = [run_script("model.py", *args, cwd=workdir).stdout for _ in range(2)]
    assert runs[0] == runs[1]  # the seed is used (the original ignored it)
    lines = runs[0].splitlines()
    rewards = [float(x) for x in lines[-3:-1]]
    seed, mean, std = lines[-1].split()[1::2]
    assert seed == "5" and float(mean) == pytest.approx(np.mean(rewards))
    assert float(std) == pytest.approx(np.std(rewards))  # population std, as the original


def test_model_rejects_a_bad_params_file(workdir, tmp_path):
    (tmp_path / "p.json").write_text("[[1, 2, 3]]")
    proc = run_script("model.py", "norender", tmp_path / "p.json", cwd=workdir, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().endswith("p.json: 3 parameters, but exp_mode zh needs 867")
    assert "Traceback" not in proc.stderr


def test_plot_progress_reads_our_logs_and_the_originals(full_run, tmp_path, tf_models):
    run_script("reports/plot_progress.py", full_run / BASE, "--out", tmp_path / "ours.png")
    run_script("reports/plot_progress.py", tf_models / "log" / "carracing.cma.16.64", "--days", "--out", tmp_path / "orig.png")
    for name in ("ours.png", "orig.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = run_script("reports/plot_progress.py", tmp_path / "missing", check=False)
    assert proc.returncode == 2 and "missing.hist.json: no such file" in proc.stderr
    run_script("reports/plot_progress.py", full_run / BASE, tf_models / "log" / "carracing.cma.16.64", "--compare",
               "--cores", 2, 64, "--labels", "ours", "original", "--out", tmp_path / "both.png")
    assert (tmp_path / "both.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = run_script("reports/plot_progress.py", full_run / BASE, full_run / BASE, "--compare", "--cores", 2, check=False)
    assert proc.returncode == 2 and "as many --cores, --labels and --after as log bases" in proc.stderr


def test_plot_progress_draws_a_restart_where_its_parent_left_off(tmp_path):
    """--after J:G: a run started from run J's mean after generation G begins at J's training
    episodes (num_episode x population from the base's name, times G) and CPU-hours at G."""
    from reports.plot_progress import starts

    def logs(base, gens):  # hist rows: gen, seconds (100 a generation), then the rest of a row
        rows = [[g, 100 * g, 0, 0, 0, 0, 0.1, 0, 0] for g in range(1, gens + 1)]
        (tmp_path / f"{base}.hist.json").write_text(json.dumps(rows))
        return str(tmp_path / base)

    a, b, c = logs("carracing.cma.1.64", 10), logs("carracing.cma.4.64", 5), logs("carracing.cma.16.64", 3)
    runs = [(a, "a", 2, None), (b, "b", 4, (0, 7)), (c, "c", 1, (1, 3))]
    rows = [([], json.loads(open(base + ".hist.json").read())) for base, *_ in runs]
    (e0, h0), (e1, h1), (e2, h2) = starts(runs, rows)
    assert (e0, h0) == (0, 0.0)
    assert e1 == 7 * 64 and h1 == pytest.approx(700 * 2 / 3600)
    assert e2 == 7 * 64 + 3 * 4 * 64 and h2 == pytest.approx(700 * 2 / 3600 + 300 * 4 / 3600)
    (tmp_path / "carracing.cma.1.64.hist_best.json").write_text("[]")
    (tmp_path / "carracing.cma.4.64.hist_best.json").write_text("[]")
    for after, says in ((["-", "1:11"], "has no generation 11"), (["1:2", "-"], "an earlier run's place (1..0)"),
                        (["-", "2:1"], "an earlier run's place (1..1)")):
        proc = run_script("reports/plot_progress.py", a, b, "--compare", "--cores", 2, 4, "--labels", "a", "b",
                          "--after", *after, "--out", tmp_path / "x.png", check=False)
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    run_script("reports/plot_progress.py", a, b, "--compare", "--cores", 2, 4, "--labels", "a", "b",
               "--after", "-", "1:7", "--out", tmp_path / "x.png")
    assert (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = run_script("reports/plot_progress.py", b, "--after", "1:3", "--out", tmp_path / "y.png", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().endswith("--after: needs --compare")
    assert not (tmp_path / "y.png").exists()


def test_a_checkpoint_written_before_sigma_adaptation_resumes_with_tpa(workdir, tmp_path):
    """Checkpoints written before --sigma_adaptation existed lack it and ran pycma 4.5's own rule
    at 867 parameters (tpa): they resume with tpa and refuse the default csa in one line naming both."""
    import zipfile

    folder = tmp_path / "log"
    tpa = ["--config", "smoke", "--max_episode_length", "20", "--sigma_adaptation", "tpa", "--log_dir", folder]
    run_script("train.py", *tpa, "--max_generations", "1", cwd=workdir, mpi=3)
    path = folder / (BASE + ".checkpoint.pt")
    with zipfile.ZipFile(path) as z:
        files = {name: z.read(name) for name in z.namelist()}
    header = json.loads(files["header.json"])
    assert header["settings"].pop("sigma_adaptation") == "tpa"
    files["header.json"] = json.dumps(header)
    with zipfile.ZipFile(path, "w") as z:  # as written before the option existed
        for name, data in files.items():
            z.writestr(name, data)
    proc = run_script("train.py", *TINY, "--log_dir", folder, "--resume", cwd=workdir, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"train.py: error: {path}: written with other settings (sigma_adaptation 'tpa' there, 'csa' now); resume "
        "needs the same ones"]
    run_script("train.py", *tpa, "--max_generations", "2", "--resume", cwd=workdir, mpi=3)
    assert [row[0] for row in json.loads((folder / (BASE + ".hist.json")).read_text())] == [1, 2]


def test_z_hidden_trains_with_a_hidden_size_other_than_40(workdir, tmp_path):
    """The master and the workers count the controller's parameters from the same config: a
    z_hidden controller of 5 tanh units has (32 + 1) * 5 + (5 + 1) * 3 = 183 of them."""
    out = run_script("train.py", *TINY, "--max_generations", 2, "--exp_mode", "z_hidden", "--controller_hidden", 5,
                     "--log_dir", tmp_path, cwd=workdir).stdout
    assert "183 parameters" in out
    best, _ = json.loads((tmp_path / (BASE + ".best.json")).read_text())
    assert len(best) == 183


def test_common_tracks_give_every_candidate_the_generations_seed():
    """Off: the original's seeds (one per antithetic pair, from np.random); on: one seed for the
    whole generation, a new one the next generation."""
    import config
    from train import generation_seeds

    original = config.preset(config.TrainConfig, "smoke")
    np.random.seed(3)
    half = np.random.randint(np.int32(2**31 - 1), size=4).tolist()
    np.random.seed(3)
    assert generation_seeds(original, 8) == half + half
    common = config.preset(config.TrainConfig, "smoke", common_tracks=1)
    first, second = generation_seeds(common, 8), generation_seeds(common, 8)
    assert len(set(first)) == 1 and len(first) == 8 and len(set(second)) == 1 and first != second
