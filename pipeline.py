"""The whole pipeline in one run folder: extract -> vae_train -> series -> rnn_train -> train
-> evaluation -> report.

    python pipeline.py --config smoke                       # everything at smoke scale, in runs/smoke/
    python pipeline.py --config smoke --train.max_generations 8 --extract.max_trials 4
    python pipeline.py --config smoke --seed 1 --run_dir runs/smoke-seed1    # a replicate

Each stage is the stage script itself, run with the run folder as its working directory, so
the original's relative paths (record/, tf_vae/vae.json, series/series.npz, ...) all land in
the run folder and nothing is written into the source tree. Between rnn_train and train it
does the original's manual step: copy tf_vae/vae.json, tf_rnn/rnn.json and
tf_initial_z/initial_z.json to vae/, rnn/ and initial_z/, where the agent looks for them.

`--<stage>.<field> VALUE` passes `--<field> VALUE` to that stage's script; the stages are
extract, vae_train, series, rnn_train, train, model (the evaluation) and report.

Iterative training (off by default: the original trains one round): with --rounds R, round k
= 2..R runs every stage again in <run_dir>/round<k>/, which gets the same layout. The last
round's agent drives --round_agent_share of its new episodes (extract.py --controller, with
--round_action_noise; the rest is the random policy's, on new tracks), and V, M and C continue
from the last round's vae.json, rnn.json and best.json (--init_from; --round_continue says
which). `--next.<stage>.<field> VALUE` applies to rounds 2 on only, e.g. fewer V epochs:

    python pipeline.py --config small --rounds 2 --next.vae_train.num_epoch 1

--first_round_config NAME runs round 1 at another preset: the medium preset's round 1 is the
small preset's whole run (its folder is then a small run), round 2 its own settings:

    python pipeline.py --config medium          # = --rounds 2 --first_round_config small

Variants (off by default: the original's pipeline): --variant dream records each step's reward
and done (extract.py --record_rewards 1), trains M with reward and done heads (rnn_train.py
--reward_done 1) and trains the controller inside M's dream (train.py --env_name
carracing_dream); the evaluation and the report stay on the real track.

    python pipeline.py --config smoke --variant dream --run_dir runs/smoke-dream

A CMA-ES restart (off by default: the original runs train.py once): --restart_generations G
runs train.py a second time in the last round, for G generations at --restart_num_episode
episodes a candidate, from the first run's last mean (<log base>.json) at its last step size
(the .hist.json's rms_stdev), with a fresh covariance and paths; the evaluation, the report and
the round's agent are then the restarted run's (issue 29's row switch: +39 held out over the
same episodes without it). The medium preset restarts so.

<run_dir>/pipeline.json records each finished stage with the options it ran with. A re-run
skips a finished stage whose options are unchanged and resumes an interrupted one from its
checkpoint. A finished stage whose options changed is never reported as done: the
evaluation and the report are redone; train continues its run when only max_generations
grew; any other change is refused with the option named, until `--rerun STAGE` redoes that
stage and every stage after it (their outputs replaced; a stage whose only change is a grown
num_epoch, num_steps or max_generations continues from its checkpoint).
"""
import contextlib
import dataclasses
import glob
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import config
from config import (
    DreamConfig,
    EnvConfig,
    EvalConfig,
    ExtractConfig,
    ModelConfig,
    PipelineConfig,
    ReportConfig,
    RNNConfig,
    RNNTrainConfig,
    SeriesConfig,
    TrainConfig,
    VAEConfig,
)
from files import atomic, json_data
from files.train_logs import CHECKPOINT_SUFFIX, log_base, read_rows
from plumbing import cli
from plumbing.cli import UserError

REPO = os.path.dirname(os.path.abspath(__file__))
# pipeline stage -> (stage script, its config classes); install has no script
STAGES = {"extract": ("extract", (EnvConfig, ExtractConfig, ModelConfig)), "vae_train": ("vae_train", (VAEConfig,)),
          "series": ("series", (SeriesConfig,)), "rnn_train": ("rnn_train", (RNNConfig, RNNTrainConfig)),
          "install": (None, ()), "train": ("train", (TrainConfig, ModelConfig, EnvConfig, DreamConfig)),
          "restart": ("train", (TrainConfig, ModelConfig, EnvConfig, DreamConfig)),
          "evaluate": ("model", (ModelConfig, EvalConfig, EnvConfig)),
          "report": ("report", (ReportConfig, ModelConfig, DreamConfig, EnvConfig))}
SCRIPTS = [script for script, _ in STAGES.values() if script]
SCRIPT_PATHS = {"report": "reports/report.py"}  # the others are <script>.py at the root
SEED_FIELDS = {"extract": "seed", "vae_train": "seed", "rnn_train": "seed", "train": "seed_start", "model": "seed",
               "report": "seed"}
DERIVED = ("install", "evaluate", "report")  # cheap stages redone whenever their options change
EXTENDABLE = {"vae_train": "num_epoch", "rnn_train": "num_steps", "train": "max_generations",
              "restart": "max_generations"}
NOT_RESULTS = ("resume", "device", "threads", "compiled")  # options that do not change a stage's results
# --variant NAME: stage options a named variant adds before the user's own (which win)
VARIANTS = {"": {}, "dream": {"extract": ["--record_rewards", "1"], "rnn_train": ["--reward_done", "1"],
                             "train": ["--env_name", "carracing_dream"]}}
HEARTBEAT_SECONDS = 30  # how often a running stage's wall time is saved in pipeline.json
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


def stage_seeds(seed):
    """Each seeded script's seed for replicate `seed`: seed * (2k + 1) mod (2^31 - 1) for the k-th
    script, a bijection of `seed` per script; seed 0 gives every script its default seed 0."""
    return {script: seed * (2 * k + 1) % (2**31 - 1) for k, script in enumerate(SEED_FIELDS)}


class Pipeline:
    """Runs the stages in the run folder and records each finished one in pipeline.json."""

    def __init__(self, run_dir, preset, stage_args, seeds, rerun, restart=(0, PipelineConfig.restart_num_episode)):
        self.run_dir, self.preset, self.stage_args, self.seeds = run_dir, preset, stage_args, seeds
        self.rerun = rerun
        self.restart_generations, self.restart_num_episode = restart  # PipelineConfig's restart_* (0: none)
        self.changed = False  # whether a stage that decides the agent ran (a next round must then be redone)
        self.state_path = os.path.join(run_dir, "pipeline.json")
        self.state = {"config": preset, "stages": {}}
        if os.path.exists(self.state_path):
            self.state = read_state(self.state_path)
            if self.state.get("config") != preset:
                raise UserError(f"{run_dir}: holds a --config {self.state.get('config')} run; "
                                f"use another --run_dir for --config {preset}")

    def path(self, *parts):
        return os.path.join(self.run_dir, *parts)

    def argv(self, script):
        """A stage script's options: --config, the derived seed, the outputs of the stages before
        it as its inputs, then the user's --stage.field options (which win)."""
        seed = [f"--{SEED_FIELDS[script]}", str(self.seeds[script])] if script in SEED_FIELDS else []
        return ["--config", self.preset, *seed, *self.inputs(script), *self.stage_args[script]]

    def inputs(self, script):
        """The options that feed `script` the files the stages before it write (each path has its
        home in the writer's config: config.VAEConfig.weights_file, ...)."""
        if script in ("extract", "train"):
            return []
        data = ["--data_dir", self.configs("extract")[1].dir_name]
        if script == "vae_train":
            return data
        vae = self.configs("vae_train")[0]
        if script == "series":
            return data + ["--vae_path", vae.weights_file()]
        series = self.configs("series")[0]
        if script == "rnn_train":
            return ["--series_path", series.series_file()]
        agent = self.configs("train")[1]
        weights = ["--vae_path", agent.vae_path, "--rnn_path", agent.rnn_path]
        if script == "model":
            return weights
        rnn = self.configs("rnn_train")[1]
        return weights + ["--record_dir", data[1], "--vae_tensorboard", vae.log_dir, "--rnn_tensorboard", rnn.log_dir]

    def installed(self):
        """{what rnn_train and vae_train wrote: where the agent loads it} (the original's manual copy)."""
        vae, (_, rnn), (_, agent, *_), (_, _, dream, _) = (self.configs(name) for name in
                                                          ("vae_train", "rnn_train", "train", "report"))
        vae = vae[0]
        return {vae.weights_file(): agent.vae_path, rnn.weights_file(): agent.rnn_path,
                rnn.initial_z_file(): dream.initial_z_path}

    def script(self, name, *args):
        """The command of stage `name`: its script with `args`, then the stage's options."""
        script = STAGES[name][0]
        path = os.path.join(REPO, SCRIPT_PATHS.get(script, f"{script}.py"))
        return [sys.executable, path, *args, *self.stage_argv(name)]

    def stage_argv(self, name):
        """Stage `name`'s script options: the restarted run's are train's with restart_args() last."""
        return self.argv(STAGES[name][0]) + (self.restart_args() if name == "restart" else [])

    def train_base(self, name="train"):
        """The log base of stage `name` (train, or restart)."""
        train_cfg, _, env_cfg, _ = self.configs(name)
        return log_base(train_cfg, env_cfg)

    def restart_args(self):
        """train.py's options of the restarted run: from train's last mean (<base>.json) at its last
        step size (the .hist.json's last rms_stdev, once the run has one), for restart_generations
        at restart_num_episode episodes a candidate."""
        base = self.train_base()
        args = ["--init_from", base + ".json", "--num_episode", str(self.restart_num_episode),
                "--max_generations", str(self.restart_generations)]
        rows = read_rows(self.path(base), ".hist.json", required=False)
        if not rows:
            return args
        sigma = rows[-1][6] if len(rows[-1]) > 6 else None
        if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not sigma > 0:
            raise UserError(f"{self.path(base)}.hist.json: its last row has no step size (rms_stdev) to restart from")
        return args + ["--sigma_init", repr(sigma)]

    def configs(self, name, argv=None):
        """The config objects of stage `name`, from its options `argv` (default: this run's)."""
        script, classes = STAGES[name]
        p = config.parser(*classes)
        args, _ = p.parse_known_args(self.stage_argv(name) if argv is None else argv)
        return config.from_args(args, *classes)

    def options(self, name, argv=None):
        """The values every option of stage `name` takes (what decides its results), with the
        stage's options `argv` (default: this run's)."""
        script, _ = STAGES[name]
        if script is None:
            return {}
        argv = self.stage_argv(name) if argv is None else argv
        values = {k: v for cfg in self.configs(name, argv) for k, v in vars(cfg).items()}
        if script == "model":
            seeds = [int(argv[i + 1]) for i, a in enumerate(argv[:-1]) if a == "--seed"]  # the last one wins
            values.update(seed=seeds[-1] if seeds else None, envs_per_worker=1)
        return {k: v for k, v in values.items() if k not in NOT_RESULTS}

    def stage(self, name, outputs, work):
        """Run `work()` unless `name` is recorded complete with unchanged options and its outputs
        exist; record its options and wall time."""
        done, now = self.state["stages"].get(name), self.options(name)
        before = 0.0
        if done and all(os.path.exists(self.path(o)) for o in outputs):
            changed = {k: (v, now.get(k)) for k, v in done.get("options", {}).items() if now.get(k) != v}
            # an option the record lacks is newer than the run, which ran as the option's `before` value
            # says (config.before_options), or else as its preset value does
            was = {**self.options(name, ["--config", self.preset]), **config.before_options(*STAGES[name][1])}
            changed.update({k: (was[k], v) for k, v in now.items() if k not in done.get("options", {}) and v != was[k]})
            grown = list(changed) == [EXTENDABLE.get(name)] and changed[EXTENDABLE[name]][1] > changed[EXTENDABLE[name]][0]
            if not changed and name != self.rerun:
                print(f"== {name}: complete ({done['seconds']:.0f} s), skipped", flush=True)
                return
            if name != self.rerun and name not in DERIVED and not (name in ("train", "restart") and grown):
                field, (old, new) = next(iter(changed.items()))
                script = STAGES[name][0]
                raise UserError(f"{self.run_dir}: stage {name} ran with --{script}.{field} {old}, now {new}; add "
                                f"--rerun {name} to redo it and the stages after it (their outputs are replaced), "
                                "or choose another --run_dir")
            self.forget_from(name, keep=grown)
            before = done["seconds"] if grown else 0.0
            print(f"== {name}: " + (f"continuing ({', '.join(f'{k} {o} -> {n}' for k, (o, n) in changed.items())})"
                                    if grown else "redone"), flush=True)
        else:
            running = self.state.get("running", {})
            before = running.get("seconds", 0.0) if running.get("stage") == name else 0.0
            if any(later in self.state["stages"] for later in list(STAGES)[list(STAGES).index(name) + 1:]):
                self.forget_from(name, keep=True)  # a stage new to this run: what came after it is stale
            print(f"== {name}" + (f" (resumed: {before:.0f} s before the interruption)" if before else ""), flush=True)
        start = time.time()
        self.changed = self.changed or name not in DERIVED
        with self.heartbeat(name, before, start):
            figures = work() or {}
        self.state.pop("running", None)
        self.state["stages"][name] = {"seconds": round(before + time.time() - start, 1), "options": now, **figures}
        atomic.save_json(self.state_path, self.state, indent=1)

    @contextlib.contextmanager
    def heartbeat(self, name, before, start):
        """Save the running stage's wall time every HEARTBEAT_SECONDS, so that a stage killed and
        resumed reports its whole time (less at most one heartbeat)."""
        stop = threading.Event()

        def beat():
            while not stop.wait(HEARTBEAT_SECONDS):
                self.state["running"] = {"stage": name, "seconds": round(before + time.time() - start, 1)}
                atomic.save_json(self.state_path, self.state, indent=1)

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def forget_from(self, name, keep=False):
        """Drop the records of stage `name` and every later one, and their outputs (all but
        `name`'s own when `keep`: it continues from its checkpoint)."""
        names = list(STAGES)
        self.state.pop("running", None)
        for later in names[names.index(name):]:
            record = self.state["stages"].pop(later, None)
            if later == name and keep:
                continue
            now = [self.options(later)] if later != "restart" or self.restart_generations else []
            for option_set in ([{**self.options(later), **record["options"]}] if record else []) + now:
                for path in self.outputs(later, option_set):
                    self.remove(path)
        atomic.save_json(self.state_path, self.state, indent=1)

    def outputs(self, name, o):
        """Files and folders stage `name` writes with options `o`, relative to the run folder."""
        if name == "train":
            base = log_base(TrainConfig(**{k: o[k] for k in ("log_dir", "optimizer", "num_episode", "num_worker",
                                                                "num_worker_trial")}), EnvConfig(env_name=o["env_name"]))
            return [os.path.relpath(p, self.run_dir) for p in glob.glob(self.path(glob.escape(base) + ".*"))] + \
                [os.path.join(o["log_dir"], "tensorboard", os.path.basename(base))]
        keys = {"extract": ["dir_name"], "vae_train": ["model_save_path", "log_dir"], "series": ["series_dir"],
                "rnn_train": ["model_save_path", "initial_z_save_path", "log_dir"], "report": ["report_dir"]}
        return list(self.installed().values()) if name == "install" else [o[k] for k in keys.get(name, [])]

    def remove(self, path):
        """Remove `path` if it lies inside the run folder (never the folder itself or beyond it)."""
        full, root = os.path.realpath(self.path(path)), os.path.realpath(self.run_dir)
        if os.path.commonpath([full, root]) != root or full == root or not os.path.lexists(full):
            return
        shutil.rmtree(full) if os.path.isdir(full) and not os.path.islink(full) else os.remove(full)

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

    def resume_flag(self, checkpoint):
        return ["--resume"] if os.path.exists(self.path(checkpoint)) else []


STATE_MAX_BYTES = 1 << 20  # pipeline.json: a few kilobytes per stage


def read_state(path):
    """pipeline.json as data: {"config", "stages": {stage: {"seconds", "options": {...}, figures}},
    "running"?}, every value a plain number, string, bool or null (figures may be lists of them);
    a one-line UserError naming the file otherwise."""
    state = json_data.read(path, "a pipeline state file", STATE_MAX_BYTES, max_depth=4)

    def scalar(v):
        return v is None or isinstance(v, (str, int, float, bool))

    def typed(name, key, value):  # a recorded option has its field's type (paths are strings, sizes integers)
        field = next((f for cls in STAGES[name][1] for f in dataclasses.fields(cls) if f.name == key), None)
        kind = type(field.default) if field else None
        if kind in (int, float) and isinstance(value, bool):
            return False
        return scalar(value) if kind is None else isinstance(value, kind) or (kind is float and isinstance(value, int))

    def record(name, r):
        return (isinstance(r, dict) and isinstance(r.get("seconds"), (int, float)) and r["seconds"] >= 0
                and isinstance(r.get("options"), dict) and all(typed(name, k, v) for k, v in r["options"].items())
                and all(scalar(v) or (isinstance(v, list) and all(scalar(x) for x in v))
                        for k, v in r.items() if k != "options"))
    running = state.get("running", {}) if isinstance(state, dict) else None
    ok = (isinstance(state, dict) and isinstance(state.get("config"), str) and isinstance(state.get("stages"), dict)
          and all(name in STAGES and record(name, r) for name, r in state["stages"].items())
          and isinstance(running, dict) and all(k in ("stage", "seconds") for k in running)
          and isinstance(running.get("seconds", 0), (int, float)) and running.get("stage", "") in ("", *STAGES))
    if not ok:
        raise UserError(f"{path}: not a pipeline state file; remove it to start over")
    return state


def install(p):
    """The original's manual step: the trained V, M and initial z where the agent loads them."""
    for src, dst in p.installed().items():
        with open(p.path(src), "rb") as f:
            atomic.write_bytes(p.path(dst), f.read())


def evaluate(p, best):
    """`model.py norender <best.json> <seed>`, one env as the original (the preset's
    envs_per_worker batches training only), so that the score is the one `python model.py
    norender` prints; returns its mean and std."""
    lines = p.call("evaluate", p.script("evaluate", "norender", best, "--envs_per_worker", "1"), capture=True)
    match = next((EVAL_LINE.match(line) for line in reversed(lines) if EVAL_LINE.match(line)), None)
    if match is None:
        raise UserError("stage evaluate: model.py printed no 'seed S average_reward M stdev D' line")
    return {"mean": float(match.group(2)), "std": float(match.group(3)), "episodes": p.options("evaluate")["num_episode"]}


def split_round_args(rest):
    """`--next.<stage>.<field> VALUE` options (rounds 2 on) apart from the others: (others, next's
    as `--<stage>.<field> VALUE`)."""
    every, later, i = [], [], 0
    while i < len(rest):
        if not rest[i].startswith("--next."):
            every.append(rest[i])
        elif "=" in rest[i]:
            later.append("--" + rest[i][len("--next."):])
        else:
            later += ["--" + rest[i][len("--next."):], *rest[i + 1:i + 2]]
            i += 1
        i += 1
    return split_stage_args(every), split_stage_args(later)


def round_args(cfg, k, last, last_agent, seeds, every, later):
    """Stage options of round k > 1, whose last round is in folder `last` (relative to round k's)
    with its agent's files `last_agent` ({"v", "m", "c"}: paths in that folder): the agent drives
    a share of the new episodes (on new tracks: the extract seed + k - 1), and V, M and C continue
    from it as --round_continue says; the user's options come after."""
    agent = {part: f"{last}/{path}" for part, path in last_agent.items()}
    flags = {script: [] for script in SCRIPTS}
    flags["extract"] = ["--seed", str(seeds["extract"] + k - 1), "--controller", agent["c"], "--vae_path", agent["v"],
                        "--rnn_path", agent["m"], "--agent_share", str(cfg.round_agent_share),
                        "--action_noise", str(cfg.round_action_noise)]
    for part, script in (("v", "vae_train"), ("m", "rnn_train"), ("c", "train")):
        if part in cfg.round_continue:
            flags[script] += ["--init_from", agent[part]]
    return {script: flags[script] + every[script] + later[script] for script in SCRIPTS}


def round_presets(cfg, preset):
    """The preset of each round: --first_round_config (when set, with rounds > 1) for round 1, then `preset`."""
    first = cfg.first_round_config if cfg.rounds > 1 and cfg.first_round_config else preset
    if first not in config.PRESETS:
        raise UserError(f"--first_round_config {first}: unknown preset (choose from {', '.join(config.PRESETS)})")
    return [first] + [preset] * (cfg.rounds - 1)


def restart(p, base):
    """CMA-ES restarted from train's last mean at its last step size (--restart_generations);
    returns the log base of the run whose agent the round keeps."""
    if not p.restart_generations:
        if "restart" in p.state["stages"]:
            raise UserError(f"{p.run_dir}: its CMA-ES run was restarted (--restart_generations "
                            f"{p.state['stages']['restart']['options'].get('max_generations')}); pass it again, or "
                            "choose another --run_dir")
        return base
    again = p.train_base("restart")
    if again == base:
        raise UserError(f"--restart_num_episode {p.restart_num_episode}: equals --train.num_episode, and the "
                        "restarted run's logs are named by it; choose another")

    def work():
        p.call("restart", p.script("restart", *p.resume_flag(again + CHECKPOINT_SUFFIX)))
        return {"restarted_from": base}  # the report's figures of both runs

    p.stage("restart", [f"{again}.best.json"], work)
    return again


def run_round(p, extract_ranks):
    """Every stage of one round in its folder; returns its agent's files {"v", "m", "c"}."""
    (_, extract, _), (vae,), (series,), (_, rnn), (train_cfg, agent, env_cfg, _), (report, *_) = (
        p.configs(name) for name in ("extract", "vae_train", "series", "rnn_train", "train", "report"))
    base = log_base(train_cfg, env_cfg)
    p.stage("extract", [extract.dir_name], lambda: p.call("extract", [
        os.path.join(os.path.dirname(sys.executable), "mpiexec"), "-n", str(extract_ranks), *p.script("extract")]))
    p.stage("vae_train", [vae.weights_file()], lambda: p.call(
        "vae_train", p.script("vae_train", *p.resume_flag(vae.checkpoint_file()))))
    p.stage("series", [series.series_file()], lambda: p.call("series", p.script("series")))
    p.stage("rnn_train", [rnn.weights_file(), rnn.initial_z_file()], lambda: p.call(
        "rnn_train", p.script("rnn_train", *p.resume_flag(rnn.checkpoint_file()))))
    p.stage("install", list(p.installed().values()), lambda: install(p))
    p.stage("train", [f"{base}.best.json"], lambda: p.call(
        "train", p.script("train", *p.resume_flag(base + CHECKPOINT_SUFFIX))))
    base = restart(p, base)
    p.stage("evaluate", [], lambda: evaluate(p, f"{base}.best.json"))
    p.stage("report", [os.path.join(report.report_dir, "summary.json")], lambda: p.call("report", p.script("report", "--log_base", base)))
    return {"v": agent.vae_path, "m": agent.rnn_path, "c": f"{base}.best.json"}


def main():
    parser = config.parser(PipelineConfig, description=__doc__.split("\n\n")[0])
    parser.add_argument("--rerun", choices=list(STAGES), metavar="STAGE",
                        help="redo this stage and every stage after it (their outputs are replaced), in every round")
    args, rest = parser.parse_known_args()
    (cfg,) = config.from_args(args, PipelineConfig)
    preset = vars(args).get("config", "paper")
    run_dir = cfg.run_dir or os.path.join("runs", preset)
    atomic.check_writable(run_dir)
    os.makedirs(run_dir, exist_ok=True)  # the stages run in it
    seeds = stage_seeds(cfg.seed)
    print(f"seeds (--seed {cfg.seed}): " + ", ".join(f"{s} {v}" for s, v in seeds.items()), flush=True)
    every, later = split_round_args(rest)
    every = {script: VARIANTS[cfg.variant].get(script, []) + every[script] for script in every}
    presets = round_presets(cfg, preset)
    restarts = [(0, cfg.restart_num_episode)] * (cfg.rounds - 1) + [(cfg.restart_generations, cfg.restart_num_episode)]
    p = Pipeline(run_dir, presets[0], every, seeds, args.rerun, restarts[0])
    started = time.time()
    agent = run_round(p, cfg.extract_ranks)
    for k in range(2, cfg.rounds + 1):
        # a round whose agent changed is redone whole; else it resumes or skips as any round
        folder = os.path.join(run_dir, f"round{k}")
        print(f"\n=== round {k} of {cfg.rounds}, in {folder}/", flush=True)
        os.makedirs(folder, exist_ok=True)
        last = ".." if k == 2 else f"../round{k - 1}"
        p = Pipeline(folder, presets[k - 1], round_args(cfg, k, last, agent, seeds, every, later), seeds,
                     "extract" if p.changed else args.rerun, restarts[k - 1])
        agent = run_round(p, cfg.extract_ranks)

    print(f"\nDone in {time.time() - started:.0f} s. Results in {p.run_dir}/: report/ (pictures and summary.json), "
          f"the agent {agent['c']} with {agent['v']} and {agent['m']} (TF format).")


if __name__ == "__main__":
    cli.run(main)
