"""The whole pipeline in one run folder: extract -> vae_train -> series -> rnn_train -> train
-> evaluation -> report.

    python pipeline.py --config smoke                       # everything at smoke scale, in runs/smoke/
    python pipeline.py --config smoke --train.max_generations 8 --extract.max_trials 4

Each stage is the stage script itself, run with the run folder as its working directory, so
the original's relative paths (record/, tf_vae/vae.json, series/series.npz, ...) all land in
the run folder and nothing is written into the source tree. Between rnn_train and train it
does the original's manual step: copy tf_vae/vae.json, tf_rnn/rnn.json and
tf_initial_z/initial_z.json to vae/, rnn/ and initial_z/, where the agent looks for them.

`--<stage>.<field> VALUE` passes `--<field> VALUE` to that stage's script; the stages are
extract, vae_train, series, rnn_train, train, model (the evaluation) and report.
Re-running skips the stages recorded as complete in <run_dir>/pipeline.json and resumes an
interrupted one from its checkpoint.
"""
import json
import os
import re
import subprocess
import sys
import time

import atomic
import config
from cli import UserError, run
from config import EnvConfig, EvalConfig, ModelConfig, PipelineConfig, TrainConfig

REPO = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = {"extract": "extract.py", "vae_train": "vae_train.py", "series": "series.py", "rnn_train": "rnn_train.py",
           "train": "train.py", "model": "model.py", "report": "report.py"}
INSTALL = {"tf_vae/vae.json": "vae/vae.json", "tf_rnn/rnn.json": "rnn/rnn.json",
           "tf_initial_z/initial_z.json": "initial_z/initial_z.json"}
EVAL_LINE = re.compile(r"^seed (\S+) average_reward (\S+) stdev (\S+)$")


def split_stage_args(rest):
    """`--stage.field value` pairs -> {stage: ["--field", "value", ...]}; anything else is an error."""
    out = {stage: [] for stage in SCRIPTS}
    i = 0
    while i < len(rest):
        match = re.fullmatch(r"--(\w+)\.(\w+)(?:=(.*))?", rest[i])
        if not match or match.group(1) not in SCRIPTS:
            raise UserError(f"{rest[i]}: unknown option (stage options are --<stage>.<field> VALUE, stages: "
                            f"{', '.join(SCRIPTS)})")
        stage, name, value = match.groups()
        if value is None:
            if i + 1 >= len(rest):
                raise UserError(f"{rest[i]}: needs a value")
            value, i = rest[i + 1], i + 1
        out[stage] += [f"--{name}", value]
        i += 1
    return out


class Pipeline:
    """Runs the stages in the run folder and records each finished one in pipeline.json."""

    def __init__(self, run_dir, preset, stage_args):
        self.run_dir, self.preset, self.stage_args = run_dir, preset, stage_args
        self.state_path = os.path.join(run_dir, "pipeline.json")
        self.state = {"config": preset, "stages": {}}
        if os.path.exists(self.state_path):
            try:
                with open(self.state_path) as f:
                    self.state = json.load(f)
                assert isinstance(self.state.get("stages"), dict)
            except (OSError, ValueError, AssertionError):
                raise UserError(f"{self.state_path}: not a pipeline state file; remove it to start over") from None
            if self.state.get("config") != preset:
                raise UserError(f"{run_dir}: holds a --config {self.state.get('config')} run; "
                                f"use another --run_dir for --config {preset}")

    def path(self, *parts):
        return os.path.join(self.run_dir, *parts)

    def script(self, stage, *args):
        """The command line of a stage script: --config first, then the user's --stage.field options."""
        return [sys.executable, os.path.join(REPO, SCRIPTS[stage]), *args, "--config", self.preset,
                *self.stage_args[stage]]

    def stage(self, name, outputs, work):
        """Run `work()` unless `name` is recorded complete and its `outputs` exist; record its wall time."""
        done = self.state["stages"].get(name)
        if done and all(os.path.exists(self.path(o)) for o in outputs):
            print(f"== {name}: complete ({done['seconds']:.0f} s), skipped", flush=True)
            return
        print(f"== {name}", flush=True)
        start = time.time()
        figures = work() or {}
        self.state["stages"][name] = {"seconds": round(time.time() - start, 1), **figures}
        atomic.save_json(self.state_path, self.state, indent=1)

    def call(self, name, cmd, capture=False):
        """Run a stage command in the run folder; its output goes to the terminal (and is returned)."""
        env = dict(os.environ, PYGAME_HIDE_SUPPORT_PROMPT="1", SDL_VIDEODRIVER=os.environ.get("SDL_VIDEODRIVER", "dummy"))
        proc = subprocess.Popen(cmd, cwd=self.run_dir, env=env, stdout=subprocess.PIPE if capture else None, text=True)
        lines = []
        if capture:
            for line in proc.stdout:
                print(line, end="", flush=True)
                lines.append(line.rstrip("\n"))
        if proc.wait() != 0:
            raise UserError(f"stage {name} failed (exit status {proc.returncode}, see above); "
                            "re-run the same command to resume")
        return lines

    def resume_flag(self, checkpoint, flag):
        return [flag] if os.path.exists(self.path(checkpoint)) else []


def install(p):
    """The original's manual step: the trained V, M and initial z where the agent loads them."""
    for src, dst in INSTALL.items():
        with open(p.path(src), "rb") as f:
            atomic.write_bytes(p.path(dst), f.read())


def evaluate(p, best):
    """`model.py norender <best.json>` with a fixed seed, one env as the original (the preset's
    envs_per_worker batches training only), so that the score is the one `python model.py
    norender` prints; returns its mean and std."""
    lines = p.call("evaluate", p.script("model", "norender", best, "0", "--envs_per_worker", "1"), capture=True)
    match = next((EVAL_LINE.match(line) for line in reversed(lines) if EVAL_LINE.match(line)), None)
    if match is None:
        raise UserError("stage evaluate: model.py printed no 'seed S average_reward M stdev D' line")
    episodes = config.parse(ModelConfig, EvalConfig, EnvConfig, argv=["--config", p.preset, *p.stage_args["model"]])[1]
    return {"mean": float(match.group(2)), "std": float(match.group(3)), "episodes": episodes.num_episode}


def main():
    parser = config.parser(PipelineConfig, description=__doc__.split("\n\n")[0])
    args, rest = parser.parse_known_args()
    (cfg,) = config.from_args(args, PipelineConfig)
    preset = vars(args).get("config", "paper")
    stage_args = split_stage_args(rest)
    run_dir = cfg.run_dir or os.path.join("runs", preset)
    atomic.check_writable(run_dir)
    env_cfg, model_cfg, train_cfg = config.parse(EnvConfig, ModelConfig, TrainConfig,
                                                 argv=["--config", preset, *stage_args["train"]])
    population = train_cfg.num_worker * train_cfg.num_worker_trial
    log_base = f"{train_cfg.log_dir}/{env_cfg.env_name}.{train_cfg.optimizer}.{train_cfg.num_episode}.{population}"
    p = Pipeline(run_dir, preset, stage_args)
    started = time.time()

    p.stage("extract", ["record"], lambda: p.call("extract", [
        os.path.join(os.path.dirname(sys.executable), "mpiexec"), "-n", str(cfg.extract_ranks),
        *p.script("extract")]))
    p.stage("vae_train", ["tf_vae/vae.json"], lambda: p.call(
        "vae_train", p.script("vae_train", *p.resume_flag("tf_vae/vae_ckpt.pt", "--resume"))))
    p.stage("series", ["series/series.npz"], lambda: p.call("series", p.script("series")))
    p.stage("rnn_train", ["tf_rnn/rnn.json", "tf_initial_z/initial_z.json"], lambda: p.call(
        "rnn_train", p.script("rnn_train", *p.resume_flag("tf_rnn/rnn_ckpt.pt", "--resume"))))
    p.stage("install", list(INSTALL.values()), lambda: install(p))
    p.stage("train", [f"{log_base}.best.json"], lambda: p.call(
        "train", p.script("train", *p.resume_flag(f"{log_base}.checkpoint.pkl", "--resume"))))
    p.stage("evaluate", [], lambda: evaluate(p, f"{log_base}.best.json"))
    p.stage("report", ["report/summary.json"], lambda: p.call("report", p.script("report", "--log_base", log_base)))

    print(f"\nDone in {time.time() - started:.0f} s. Results in {run_dir}/: report/ (pictures and summary.json), "
          f"{log_base}.* (controller logs), vae/, rnn/ (weights, TF format).")


if __name__ == "__main__":
    run(main)
