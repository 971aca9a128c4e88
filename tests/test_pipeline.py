"""pipeline.py end to end at a tiny scale: every report file, skip on re-run, resume after a kill."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO
from PIL import Image

TINY = [
    "--extract.max_trials", "1", "--extract.max_frames", "40",
    "--vae_train.num_epoch", "4", "--vae_train.batch_size", "20", "--vae_train.checkpoint_every", "1",
    "--vae_train.log_every", "1",
    "--rnn_train.max_seq_len", "39", "--rnn_train.batch_size", "2", "--rnn_train.num_steps", "4",
    "--train.num_worker_trial", "2", "--train.max_generations", "1", "--train.eval_steps", "1",
    "--train.max_episode_length", "15",
    "--model.num_episode", "1", "--model.max_episode_length", "15",
    "--report.gif_frames", "8", "--report.max_frames", "6", "--report.max_episode_length", "15",
]
STAGES = ["extract", "vae_train", "series", "rnn_train", "install", "train", "evaluate", "report"]
REPORT = ["vae_losses.png", "rnn_loss.png", "cma_history.png", "vae_reconstruction.gif", "agent.gif",
          "dream_t1.15.gif", "dream_t0.5.gif", "summary.json"]


def pipeline(run_dir, *extra):
    return [sys.executable, str(REPO / "pipeline.py"), "--config", "smoke", "--run_dir", str(run_dir), *TINY, *extra]


def source_tree(keep_out):
    """{path: mtime} of the repository's files, leaving out caches, the venv and the run folders
    in `keep_out` (a user's own runs, which may be running)."""
    skip = {".venv", ".git", "__pycache__", ".pytest_cache"}
    files = {}
    for folder, subfolders, names in os.walk(REPO):
        rel = os.path.relpath(folder, REPO)
        subfolders[:] = [d for d in subfolders if d not in skip and os.path.join(rel, d) not in keep_out]
        files.update({os.path.join(rel, n): os.stat(os.path.join(folder, n)).st_mtime_ns for n in names})
    return files


@pytest.fixture
def untouched_source_tree():
    """Fails the test if it wrote anything into the repository (whatever the user has there)."""
    runs = REPO / "runs"
    keep_out = {os.path.join("runs", d) for d in (os.listdir(runs) if runs.is_dir() else [])}
    before = source_tree(keep_out)
    yield
    assert source_tree(keep_out) == before


def test_tiny_pipeline_killed_resumed_then_skipped(tmp_path, untouched_source_tree):
    run_dir = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # 1. kill the whole process group as soon as vae_train has written a checkpoint
    proc = subprocess.Popen(pipeline(run_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    checkpoint = run_dir / "tf_vae" / "vae_ckpt.pt"
    deadline = time.time() + 240
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists(), "vae_train never wrote its checkpoint"
    state = json.loads((run_dir / "pipeline.json").read_text())
    assert set(state["stages"]) == {"extract"}  # killed inside vae_train

    # 2. re-run: extract is skipped, vae_train resumes from its checkpoint, everything else runs; the
    # time vae_train ran before the kill (as its heartbeat would have saved it) counts in its wall time
    state["running"] = {"stage": "vae_train", "seconds": 100.0}
    (run_dir / "pipeline.json").write_text(json.dumps(state))
    second = subprocess.run(pipeline(run_dir), env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "== extract: complete" in second.stdout and "== vae_train: complete" not in second.stdout
    assert "== vae_train (resumed: 100 s before the interruption)" in second.stdout
    state = json.loads((run_dir / "pipeline.json").read_text())
    assert state["stages"]["vae_train"]["seconds"] > 100 and "running" not in state
    assert list(state["stages"]) == STAGES
    for name in REPORT:
        assert (run_dir / "report" / name).stat().st_size > 0, name
    for name in REPORT[:3]:
        assert Image.open(run_dir / "report" / name).format == "PNG"
    for name in REPORT[3:7]:
        assert Image.open(run_dir / "report" / name).format == "GIF"
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    assert summary["stages"]["extract"]["episodes"] == 2 and summary["stages"]["extract"]["frames"] == 80
    assert summary["stages"]["evaluate"]["episodes"] == 1
    assert {"loss", "r_loss", "kl_loss"} <= set(summary["stages"]["vae_train"]["final_losses"])
    assert summary["stages"]["train"]["generations"] == 1
    assert all("seconds" in summary["stages"][s] for s in ["extract", "vae_train", "train", "evaluate"])
    vae = summary["stages"]["vae_train"]  # work over wall time: 4 epochs of 80 frames in batches of 20
    assert vae["images"] == 320 and vae["images_per_second"] == round(320 / state["stages"]["vae_train"]["seconds"], 1)

    # 3. re-run again: every stage is skipped
    third = subprocess.run(pipeline(run_dir), env=env, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0, third.stderr[-3000:]
    assert [f"== {s}: complete" in third.stdout for s in STAGES] == [True] * len(STAGES)
    # ... a record older than an option ran as the option's `before` value (config.py), not the preset's
    state_file = run_dir / "pipeline.json"
    recorded = state_file.read_text()
    older = json.loads(recorded)
    assert older["stages"]["train"]["options"].pop("sigma_adaptation") == "csa"
    state_file.write_text(json.dumps(older))
    proc = subprocess.run(pipeline(run_dir), env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "stage train ran with --train.sigma_adaptation tpa, now csa;" in proc.stderr
    proc = subprocess.run(pipeline(run_dir, "--train.sigma_adaptation", "tpa"), env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "== train: complete" in proc.stdout, proc.stderr[-3000:]
    state_file.write_text(recorded)

    # 4. a changed option is never reported as done: more generations continue train's run ...
    fourth = subprocess.run(pipeline(run_dir, "--train.max_generations", "2"), env=env, capture_output=True, text=True,
                            timeout=300)
    assert fourth.returncode == 0, fourth.stdout[-3000:] + fourth.stderr[-3000:]
    assert "== train: continuing (max_generations 1 -> 2)" in fourth.stdout and "== rnn_train: complete" in fourth.stdout
    assert "resuming" in fourth.stdout and "== evaluate: redone" not in fourth.stdout  # its record was dropped
    hist = json.loads((run_dir / "log" / "carracing.cma.1.4.hist.json").read_text())
    assert [row[0] for row in hist] == [1, 2]
    assert json.loads((run_dir / "report" / "summary.json").read_text())["stages"]["train"]["generations"] == 2
    # ... any other change is refused, naming the option, until --rerun redoes the stage
    refused = subprocess.run(pipeline(run_dir, "--train.max_generations", "2", "--train.sigma_init", "0.2"), env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        f"pipeline.py: error: {run_dir}: stage train ran with --train.sigma_init 0.1, now 0.2; add --rerun train to redo "
        "it and the stages after it (their outputs are replaced), or choose another --run_dir"]
    redo = subprocess.run(pipeline(run_dir, "--train.max_generations", "2", "--train.sigma_init", "0.2", "--rerun",
                                   "train"), env=env, capture_output=True, text=True, timeout=300)
    assert redo.returncode == 0, redo.stdout[-3000:] + redo.stderr[-3000:]
    assert "== train: redone" in redo.stdout and "resuming" not in redo.stdout
    assert json.loads((run_dir / "log" / "carracing.cma.1.4.hist.json").read_text())[0][6] != hist[0][6]  # sigma 0.2

    # 5. a CMA-ES restart added to the finished run: train.py again from its last mean at its last step size,
    # at 2 episodes a candidate; the evaluation and the report are redone on the restarted run's agent
    restart = ["--train.max_generations", "2", "--train.sigma_init", "0.2", "--restart_generations", "1",
               "--restart_num_episode", "2"]
    fifth = subprocess.run(pipeline(run_dir, *restart), env=env, capture_output=True, text=True, timeout=300)
    assert fifth.returncode == 0, fifth.stdout[-3000:] + fifth.stderr[-3000:]
    assert "== train: complete" in fifth.stdout and "== evaluate: complete" not in fifth.stdout
    first_run = json.loads((run_dir / "log" / "carracing.cma.1.4.hist.json").read_text())
    options = json.loads(state_file.read_text())["stages"]["restart"]["options"]
    assert (options["init_from"], options["sigma_init"]) == ("log/carracing.cma.1.4.json", first_run[-1][6])
    assert (options["num_episode"], options["max_generations"]) == (2, 1)
    assert "loading file log/carracing.cma.2.4.best.json" in fifth.stdout  # the evaluation's agent
    summary = json.loads((run_dir / "report" / "summary.json").read_text())["stages"]
    assert summary["train"]["generations"] == 2 and summary["restart"]["generations"] == 1
    # ... dropped, it is refused (nothing removed); grown, the restarted run continues
    refused = subprocess.run(pipeline(run_dir, *restart[:4]), env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        f"pipeline.py: error: {run_dir}: its CMA-ES run was restarted (--restart_generations 1); pass it again, or "
        "choose another --run_dir"]
    grown = subprocess.run(pipeline(run_dir, *restart[:5], "2", *restart[6:]), env=env, capture_output=True,
                           text=True, timeout=300)
    assert grown.returncode == 0, grown.stdout[-3000:] + grown.stderr[-3000:]
    assert "== restart: continuing (max_generations 1 -> 2)" in grown.stdout
    assert [row[0] for row in json.loads((run_dir / "log" / "carracing.cma.2.4.hist.json").read_text())] == [1, 2]


@pytest.mark.parametrize("extra, message", [
    (["--bogus.x", "1"], "--bogus.x: unknown option"),
    (["--vae_train.num_epoch"], "--vae_train.num_epoch: needs a value"),
])
def test_bad_pipeline_options_are_one_line_errors(tmp_path, extra, message):
    proc = subprocess.run(pipeline(tmp_path / "run", *extra), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_seed_derives_every_stage_seed():
    import pipeline

    zero, one = pipeline.stage_seeds(0), pipeline.stage_seeds(1)
    assert set(zero.values()) == {0}  # seed 0 is every script's default: the presets' runs
    assert len(set(one.values())) == len(one) and set(one) == {"extract", "vae_train", "rnn_train", "train", "model",
                                                               "report"}
    p = pipeline.Pipeline("unused", "smoke", pipeline.split_stage_args(["--train.seed_start", "9"]), one, None)
    assert p.options("extract")["seed"] == one["extract"] and p.options("evaluate")["seed"] == one["model"]
    assert p.options("train")["seed_start"] == 9  # an explicit stage option wins


def test_a_second_round_records_with_the_first_rounds_agent_and_continues_from_it(tmp_path):
    run_dir = tmp_path / "run"
    cmd = pipeline(run_dir, "--rounds", "2", "--round_agent_share", "0.5", "--next.vae_train.num_epoch", "2")
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert first.returncode == 0, first.stderr
    round2 = run_dir / "round2"
    policies = json.loads((round2 / "record" / "policies.json").read_text())
    assert sorted(policies["episodes"].values()) == ["agent", "random"]  # episode 1 of 2 at share 0.5
    best = run_dir / "log" / "carracing.cma.1.4.best.json"
    assert policies["settings"]["controller"] == hashlib.sha256(best.read_bytes()).hexdigest()
    stages = json.loads((round2 / "pipeline.json").read_text())["stages"]
    assert stages["extract"]["options"]["seed"] == 1 and stages["extract"]["options"]["agent_share"] == 0.5
    assert stages["vae_train"]["options"]["init_from"] == "../vae/vae.json"
    assert stages["vae_train"]["options"]["num_epoch"] == 2  # --next.* applies to round 2 only
    first_round = json.loads((run_dir / "pipeline.json").read_text())["stages"]
    assert first_round["vae_train"]["options"]["num_epoch"] == 4 and first_round["vae_train"]["options"]["init_from"] == ""
    assert stages["rnn_train"]["options"]["init_from"] == "../rnn/rnn.json"
    assert stages["train"]["options"]["init_from"] == "../log/carracing.cma.1.4.best.json"
    assert all((round2 / "report" / name).exists() for name in REPORT)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert again.stdout.count("skipped") == 2 * len(STAGES)


def test_round_options_follow_round_continue():
    import config
    import pipeline

    cfg = config.preset(config.PipelineConfig, rounds=3, round_continue="vm", round_action_noise=0.05)
    every, later = pipeline.split_round_args(["--train.sigma_init", "0.2", "--next.train.sigma_init=0.05"])
    last_agent = {"v": "vae/vae.json", "m": "rnn/rnn.json", "c": "log/x.best.json"}
    args = pipeline.round_args(cfg, 3, "../round2", last_agent, {"extract": 7}, every, later)
    assert args["extract"][:8] == ["--seed", "9", "--controller", "../round2/log/x.best.json",
                                   "--vae_path", "../round2/vae/vae.json", "--rnn_path", "../round2/rnn/rnn.json"]
    assert args["extract"][-2:] == ["--action_noise", "0.05"]
    assert args["vae_train"] == ["--init_from", "../round2/vae/vae.json"]
    assert "--init_from" not in args["train"]  # C starts from zeros
    assert args["train"] == ["--sigma_init", "0.2", "--sigma_init", "0.05"]  # the last one wins


def test_the_medium_preset_is_a_small_run_then_a_round_at_its_own_settings(tmp_path):
    import config
    import pipeline

    medium = config.preset(config.PipelineConfig, "medium")
    assert pipeline.round_presets(medium, "medium") == ["small", "medium"]
    assert pipeline.round_presets(config.preset(config.PipelineConfig, "small", rounds=3), "small") == ["small"] * 3
    round2 = pipeline.Pipeline(str(tmp_path), "medium", pipeline.split_stage_args([]), pipeline.stage_seeds(0), None)
    small = pipeline.Pipeline(str(tmp_path), "small", pipeline.split_stage_args([]), pipeline.stage_seeds(0), None)
    assert small.options("vae_train")["num_epoch"] == 5 and round2.options("vae_train")["num_epoch"] == 1
    assert (round2.options("train")["num_worker_trial"], round2.options("train")["num_episode"]) == (32, 1)
    restarted = pipeline.Pipeline(str(tmp_path), "medium", pipeline.split_stage_args([]), pipeline.stage_seeds(0),
                                  None, (medium.restart_generations, medium.restart_num_episode))
    restart = restarted.options("restart")  # the study's row switch: 347 x 64 x 1, then 73 x 64 x 4
    assert (round2.options("train")["max_generations"], restart["max_generations"], restart["num_episode"]) == (347, 73, 4)
    assert restart["init_from"] == "log/carracing.cma.1.64.json" and restart["num_worker_trial"] == 32
    assert restarted.train_base("restart") == "log/carracing.cma.4.64"  # the shipped agent's log names
    last_agent = {"v": "vae/vae.json", "m": "rnn/rnn.json", "c": "log/x.best.json"}
    empty = pipeline.split_stage_args([])
    args = pipeline.round_args(medium, 2, "..", last_agent, {"extract": 0}, empty, empty)
    assert "--init_from" in args["vae_train"] and "--init_from" not in args["rnn_train"]  # V continues, M is fresh
    assert args["train"][args["train"].index("--init_from") + 1] == "../log/x.best.json"  # C from round 1's mean
    proc = subprocess.run([sys.executable, str(REPO / "pipeline.py"), "--config", "smoke", "--rounds", "2",
                           "--first_round_config", "huge", "--run_dir", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "--first_round_config huge: unknown preset (choose from paper, smoke, small, medium)" in proc.stderr
    assert not (tmp_path / "r" / "pipeline.json").exists()


def test_stage_outputs_feed_the_next_stages_wherever_the_user_puts_them(tmp_path):
    import pipeline

    p = pipeline.Pipeline(str(tmp_path), "smoke", pipeline.split_stage_args(
        ["--extract.dir_name", "rec", "--vae_train.model_save_path", "v1", "--series.series_dir", "s1",
         "--rnn_train.model_save_path", "m1", "--rnn_train.initial_z_save_path", "z1", "--train.vae_path", "a/v.json"]),
        pipeline.stage_seeds(0), None)
    assert p.options("vae_train")["data_dir"] == "rec"
    assert (p.options("series")["data_dir"], p.options("series")["vae_path"]) == ("rec", "v1/vae.json")
    assert p.options("rnn_train")["series_path"] == "s1/series.npz"
    assert p.installed() == {"v1/vae.json": "a/v.json", "m1/rnn.json": "rnn/rnn.json",
                             "z1/initial_z.json": "initial_z/initial_z.json"}
    assert p.options("evaluate")["vae_path"] == p.options("report")["vae_path"] == "a/v.json"
    assert p.options("report")["record_dir"] == "rec"


def test_the_dream_variant_records_rewards_trains_the_heads_and_the_controller_in_the_dream(tmp_path):
    """--variant dream: extract.py --record_rewards 1, rnn_train.py --reward_done 1, train.py --env_name
    carracing_dream, end to end at the tiny scale; the report and the real evaluation as usual."""
    import numpy as np

    run_dir = tmp_path / "dream"
    proc = subprocess.run(pipeline(run_dir, "--variant", "dream"), env=dict(os.environ, OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with np.load(run_dir / "series" / "series.npz") as series:
        assert series["reward"].shape == series["done"].shape == (2, 40)
    assert len(json.loads((run_dir / "rnn" / "rnn.json").read_text())) == 6  # M's 4 arrays + the heads' 2
    assert (run_dir / "log" / "carracing_dream.cma.1.4.best.json").exists()
    state = json.loads((run_dir / "pipeline.json").read_text())
    assert state["stages"]["train"]["options"]["env_name"] == "carracing_dream"
    assert state["stages"]["rnn_train"]["options"]["reward_done"] == 1
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    assert summary["stages"]["train"]["generations"] == 1 and summary["stages"]["evaluate"]["episodes"] == 1


def test_a_restart_refuses_logs_it_would_overwrite_and_a_log_without_a_step_size(tmp_path):
    import pipeline
    from plumbing.cli import UserError

    same = pipeline.Pipeline(str(tmp_path), "smoke", pipeline.split_stage_args([]), pipeline.stage_seeds(0), None, (3, 1))
    with pytest.raises(UserError, match="--restart_num_episode 1: equals --train.num_episode"):
        pipeline.restart(same, same.train_base())
    p = pipeline.Pipeline(str(tmp_path), "smoke", pipeline.split_stage_args([]), pipeline.stage_seeds(0), None, (3, 2))
    assert p.restart_args()[-2:] == ["--max_generations", "3"]  # no step size before the first run has a log
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "carracing.cma.1.4.hist.json").write_text("[[1, 2.0, 5.0, 1.0, 9.0, 2.0, 0.0625, 10, 10]]")
    assert p.restart_args()[-2:] == ["--sigma_init", "0.0625"] and p.options("restart")["sigma_init"] == 0.0625
    (tmp_path / "log" / "carracing.cma.1.4.hist.json").write_text('[[1, 2.0, 5.0, 1.0, 9.0, 2.0, "x"]]')
    with pytest.raises(UserError, match=r"carracing.cma.1.4.hist.json: its last row has no step size"):
        p.restart_args()
