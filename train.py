"""Train the controller C with an evolution strategy (CMA-ES by default) over MPI, as the original.

    python train.py                                  # starts `mpiexec -n 65` itself (-n 64 workers)
    mpiexec -n 3 python train.py -n 2 --config smoke # or launch it yourself: N workers + 1 master

Rank 0 (the master) runs the optimizer and never builds V or M; ranks 1..N (the workers) hold
the frozen V and M and evaluate solutions. The protocol is the original's:
- solution packet to worker r (int32, `num_worker_trial` records of 5 + num_params values):
  [worker_id (= r), job_index, seed, train_mode, max_len, round(params * 10000)...];
  the workers evaluate the params quantized to 1e-4;
- result packet (int32, 4 per record): [worker_id, job_index, int(fitness * 10000),
  int(mean_t * 10000)], fitness = mean return over `num_episode` episodes run by one
  `simulate(..., seed)` call, mean_t = mean last step index;
- with `antithetic`, solutions i and i + popsize/2 get the same seed (same tracks);
- with `--envs_per_worker K` > 1 a worker runs all num_worker_trial x num_episode episodes of a
  packet through K lockstep envs (agent.rollout.simulate_batch: same tracks, z noise per episode);
- options off in the original: `--train_renderer` renders the training episodes with another
  renderer (evaluations keep --renderer), `--no_reward_steps N` ends a training episode after
  N steps without a positive reward (evaluations run full episodes);
- `--env_name carracing_dream` (off in the original's CarRacing; its Doom train.py trains in its
  dream env the same way): the training packets run in M's dream (agent.dream_rollout, one
  batched dream per packet, M with reward and done heads, --train_temperature), the
  evaluations of the mean on the real track;
- every `eval_steps` generations the optimizer's current_param (CMA: the mean) is evaluated on
  seeds 0..popsize-1 (1024 episodes at paper scale) and `best.json` keeps the best evaluation.
Seeds come from the global np.random, seeded with `seed_start` once after the optimizer is
built; pycma samples from the same generator, so a run is determined by its settings.

The five logs (train_logs.py: the original's names and formats) are written after every
generation and evaluation, each time after `<base>.checkpoint.pt` (optimizer, RNG and
histories), from which `--resume` continues exactly and rewrites them; TensorBoard scalars go
to `<log_dir>/tensorboard/<name>`. A packet of zeros stops a worker.
"""
import dataclasses
import os
import sys
import time
import traceback
from typing import NamedTuple

import numpy as np
import torch

import config
from agent.rollout import simulate_batch
from config import ES_ARGS, DreamConfig, EnvConfig, ModelConfig, TrainConfig
from env import env_from_config
from es import CMAES, PEPG, OpenES, SimpleGA
from files import atomic, train_checkpoint, train_logs
from model import controller_size, make_model, read_controller_params, simulate
from plumbing import cli, mpi
from plumbing.cli import UserError
from plumbing.torch_setup import set_torch_for_acting
from rnn.rnn import hps_of

PRECISION = 10000  # params travel as int32(round(p * 1e4)), results as int32(value * 1e4)
TAG_WORK = 0  # packets and results
TAG_FAILED = 7  # a worker's last words (a str mpi4py pickles between this job's ranks; no user's file), sent when it
# stops for any reason but the master's order
ABORT_GRACE_SECONDS = 1.0  # between the master's last line and its MPI_Abort
OPTIMIZERS = {"cma": CMAES, "ses": PEPG, "pepg": PEPG, "ga": SimpleGA, "openes": OpenES}


# --- packets ------------------------------------------------------------------------------------

def encode_solution_packets(seeds, solutions, train_mode=1, max_len=-1, num_worker=None):
    """One int32 packet per worker; job i goes to worker i // num_worker_trial + 1. The original
    read `num_worker` from a global; default here: one job per worker (its num_worker_trial 1)."""
    num_worker = num_worker or len(seeds)
    trials = len(seeds) // num_worker
    rows = [np.concatenate([[i // trials + 1, i, seeds[i], train_mode, max_len], np.round(np.asarray(s) * PRECISION)])
            for i, s in enumerate(solutions)]
    return np.split(np.concatenate(rows).astype(np.int32), num_worker)


def decode_solution_packet(packet, num_worker_trial=1):
    """[(worker_id, job_index, seed, train_mode, max_len, params as float), ...]."""
    return [(int(p[0]), int(p[1]), int(p[2]), int(p[3]), int(p[4]), p[5:].astype(np.float64) / PRECISION)
            for p in np.split(packet, num_worker_trial)]


def encode_result_packet(results):
    """results: [(worker_id, job_index, fitness, timesteps), ...] -> int32 (values * 1e4, truncated)."""
    r = np.array(results, dtype=np.float64)
    r[:, 2:4] *= PRECISION
    return r.flatten().astype(np.int32)


def decode_result_packet(packet, num_worker_trial=1):
    r = packet.reshape(num_worker_trial, 4)
    return [(int(w), int(j), f / PRECISION, t / PRECISION) for w, j, f, t in r.astype(np.float64)]


# --- the worker ---------------------------------------------------------------------------------

def worker_envs(cfg, model_cfg, env_cfg):
    """A worker's envs (envs_per_worker of them) by packet train_mode: 0 (evaluations) render with
    env_cfg.renderer, 1 (training) with cfg.train_renderer when set; the same envs when those agree."""
    envs = {0: [env_from_config(env_cfg) for _ in range(model_cfg.envs_per_worker)]}
    train_env_cfg = dataclasses.replace(env_cfg, renderer=cfg.train_renderer or env_cfg.renderer)
    envs[1] = envs[0] if train_env_cfg == env_cfg else [env_from_config(train_env_cfg)
                                                        for _ in range(model_cfg.envs_per_worker)]
    return envs


def training_dream(model, env_cfg, dream_cfg):
    """The batched dream the training packets run in with --env_name carracing_dream, else None."""
    if env_cfg.env_name != "carracing_dream":
        return None
    from dream_env import CarRacingDreamBatch
    from files.tfjson import load_initial_z

    initial_z = load_initial_z(dream_cfg.initial_z_path, model.rnn.hps.output_seq_width)
    return CarRacingDreamBatch(model.rnn, initial_z, dream_cfg.train_temperature, dream_cfg.max_frames,
                               dream_cfg.train_dropout_prob, dream_cfg.train_done_warmup)


def evaluate_packet(cfg, model, envs, jobs, dream=None):
    """[(rewards, last step indices)] of the packet's solutions, each over num_episode episodes."""
    _, _, _, train_mode, max_len, _ = jobs[0]  # one train_mode and max_len per packet
    if dream is not None and train_mode == 1:
        from agent.dream_rollout import simulate_dreams

        return simulate_dreams(model, dream, [j[5] for j in jobs], [j[2] for j in jobs], num_episode=cfg.num_episode,
                               max_len=max_len)
    if len(envs[train_mode]) == 1:  # the original: one simulate call per solution
        model.env = envs[train_mode][0]
        episodes = []
        for _, _, seed, _, _, params in jobs:
            model.set_model_params(params)
            episodes.append(simulate(model, train_mode=train_mode == 1, render_mode=False, num_episode=cfg.num_episode,
                                     seed=seed, max_len=max_len, no_reward_steps=cfg.no_reward_steps))
        return episodes
    return simulate_batch(model, envs[train_mode], [j[5] for j in jobs], [j[2] for j in jobs],  # agent/rollout.py
                          num_episode=cfg.num_episode, train_mode=train_mode == 1, max_len=max_len,
                          no_reward_steps=cfg.no_reward_steps)


def worker(cfg, model_cfg, env_cfg, dream_cfg=None):
    """Rank >= 1: build the agent once, then evaluate packets until a stop packet arrives."""
    try:
        model = make_model(cfg=model_cfg, env_cfg=env_cfg)
        envs = worker_envs(cfg, model_cfg, env_cfg)
        dream = training_dream(model, env_cfg, dream_cfg or DreamConfig())
        packet = np.empty((5 + model.param_count) * cfg.num_worker_trial, dtype=np.int32)
        while True:
            mpi.wait(mpi.comm.Irecv(packet, source=0, tag=TAG_WORK))
            if packet[0] == 0:  # the master's stop
                return
            jobs = decode_solution_packet(packet, cfg.num_worker_trial)
            for worker_id, *_ in jobs:
                if worker_id != mpi.rank:
                    raise RuntimeError(f"packet for worker {worker_id} arrived at rank {mpi.rank}")
            results = [(worker_id, job, np.mean(rewards), np.mean(t_list))
                       for (worker_id, job, *_), (rewards, t_list) in zip(jobs, evaluate_packet(cfg, model, envs, jobs, dream))]
            mpi.wait(mpi.comm.Isend(encode_result_packet(results), dest=0, tag=TAG_WORK))
    except BaseException as e:  # tell the master, which would otherwise wait for this worker forever
        message = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
        mpi.comm.send(f"worker {mpi.rank} stopped: {message}", dest=0, tag=TAG_FAILED)
        if not isinstance(e, KeyboardInterrupt):
            time.sleep(60)  # stay until the master's MPI_Abort ends the job: a sender to an exited rank can crash
        raise


# --- the master ---------------------------------------------------------------------------------

class Workers:
    """The master's side of the protocol: scatter packets, gather results without spinning,
    and turn a worker's failure notice into a one-line error."""

    def __init__(self, cfg, num_params):
        self.cfg = cfg
        self.packet_size = (5 + num_params) * cfg.num_worker_trial
        self.hint = ""  # how to continue, added to a failure message

    def evaluate(self, seeds, solutions, train_mode=1, max_len=-1):
        """(fitness, timesteps) arrays of the population, in job order."""
        cfg = self.cfg
        packets = encode_solution_packets(seeds, solutions, train_mode, max_len, num_worker=cfg.num_worker)
        sends = [mpi.comm.Isend(p, dest=r + 1, tag=TAG_WORK) for r, p in enumerate(packets)]
        buffers = [np.empty(4 * cfg.num_worker_trial, dtype=np.int32) for _ in packets]
        receives = [mpi.comm.Irecv(b, source=r + 1, tag=TAG_WORK) for r, b in enumerate(buffers)]
        pending = sends + receives
        while pending:
            pending = [r for r in pending if not r.Test()]
            if mpi.comm.Iprobe(source=mpi.MPI.ANY_SOURCE, tag=TAG_FAILED):
                message = mpi.comm.recv(source=mpi.MPI.ANY_SOURCE, tag=TAG_FAILED)
                raise UserError(message + self.hint)
            if pending:
                time.sleep(mpi.POLL_SECONDS)
        fitness = np.zeros(len(seeds))
        timesteps = np.zeros(len(seeds))
        returned = np.zeros(len(seeds), dtype=bool)
        for r, b in enumerate(buffers):
            for worker_id, job, f, t in decode_result_packet(b, cfg.num_worker_trial):
                if worker_id != r + 1:
                    raise RuntimeError(f"result of worker {worker_id} came from rank {r + 1}")
                fitness[job], timesteps[job], returned[job] = f, t, True
        if not returned.all():
            raise RuntimeError(f"jobs {np.flatnonzero(~returned).tolist()} did not come back")
        return fitness, timesteps

    def stop(self):
        """Send every worker the stop packet (all zeros: worker id 0 exists nowhere)."""
        stop = np.zeros(self.packet_size, dtype=np.int32)
        for request in [mpi.comm.Isend(stop, dest=r + 1, tag=TAG_WORK) for r in range(self.cfg.num_worker)]:
            mpi.wait(request)


def make_es(cfg, num_params, x0=None):
    """The optimizer with the original train.py's arguments for `cfg.optimizer`, its mean at `x0`
    when given (--init_from) instead of zeros."""
    kwargs = dict(ES_ARGS[cfg.optimizer], sigma_init=cfg.sigma_init, popsize=cfg.num_worker * cfg.num_worker_trial)
    if cfg.optimizer != "cma":
        kwargs["sigma_decay"] = cfg.sigma_decay
    if cfg.optimizer == "openes":
        kwargs["antithetic"] = cfg.antithetic == 1
    if cfg.optimizer == "cma":
        kwargs["sigma_adaptation"] = cfg.sigma_adaptation
        if x0 is not None:
            kwargs["x0"] = x0
    try:
        es = OPTIMIZERS[cfg.optimizer](num_params, **kwargs)
    except ValueError as e:
        raise UserError(f"--optimizer {cfg.optimizer} with population {kwargs['popsize']}: {e}") from None
    if cfg.optimizer != "cma" and x0 is not None:
        es.set_mu(x0)
    return es


class HistoryRow(NamedTuple):
    """A row of .hist.json (the original's columns; values truncated to 2 decimals as it did)."""
    gen: int
    seconds: int
    mean: float
    min: float
    max: float
    std: float
    rms_stdev: float
    mean_steps: float  # mean last step index + 1
    max_steps: int


def trunc2(x):
    """The original's int(x * 100) / 100 (truncation to 2 decimals)."""
    return int(x * 100) / 100.0


def run_settings(cfg, model_cfg, env_cfg, dream_cfg=None):
    """The settings a resumed run must share with the run it continues (a run in the dream: also
    the training dream's options, DreamConfig's train_* fields, and its length)."""
    t = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("max_generations", "log_dir", "resume")}
    dream = {}
    if env_cfg.env_name == "carracing_dream":
        dream = {f"dream.{k}": v for k, v in dataclasses.asdict(dream_cfg or DreamConfig()).items()
                 if k.startswith("train_") or k == "max_frames"}
    return {**t, **{f"model.{k}": v for k, v in dataclasses.asdict(model_cfg).items() if k not in ("vae_path", "rnn_path")},
            **{f"env.{k}": v for k, v in dataclasses.asdict(env_cfg).items() if k != "compiled"},  # same frames either way
            **dream}


def init_params(cfg, model_cfg, num_params):
    """The controller parameters of --init_from, or None (the original's zeros)."""
    if not cfg.init_from:
        return None
    return read_controller_params(cfg.init_from, num_params, model_cfg.exp_mode)


def preflight(cfg, model_cfg, env_cfg, dream_cfg=None):
    """What can be refused before MPI starts: missing weights, an unwritable log folder, a start
    over an existing run or a resume without one, and a bad --init_from. Creates nothing. Returns
    the checkpoint rank 0 read when resuming (the run goes on from it, not from a second read), else None."""
    population = cfg.num_worker * cfg.num_worker_trial
    if cfg.optimizer == "cma" and population < 3:  # pycma 4.5 then injects more mirrored samples than it asks
        raise UserError(f"-n {cfg.num_worker} -t {cfg.num_worker_trial}: population {population}, but cma needs at "
                        "least 3 (raise --num_worker_trial)")
    model_cfg.check_weight_files()
    atomic.check_writable(cfg.log_dir)
    base = train_logs.log_base(cfg, env_cfg)
    if cfg.resume:  # one process reads the checkpoint (the launcher, or rank 0 for the others)
        refusal = loaded = None
        if mpi.rank == 0:
            try:
                loaded = load_checkpoint(cfg, model_cfg, env_cfg,
                                         controller_size(model_cfg, hps_of(model_cfg.rnn_path)), dream_cfg)
            except UserError as e:
                refusal = str(e)
        # (mpi4py pickles the str between this job's own ranks: no user's file reaches it)
        refusal = mpi.comm.bcast(refusal, root=0) if mpi.size > 1 else refusal
        if refusal:
            raise UserError(refusal)
        return loaded
    existing = [base + s for s in (*train_logs.LAYOUTS, train_logs.CHECKPOINT_SUFFIX) if os.path.exists(base + s)]
    if existing:
        raise UserError(f"{existing[0]}: a run with these settings exists; pass --resume to continue it, "
                        "or move its files or choose another --log_dir")
    if cfg.init_from and cfg.optimizer == "ga":
        raise UserError(f"--init_from {cfg.init_from}: not with --optimizer ga, whose population has no mean")
    if cfg.init_from:  # refuses a missing, corrupt or mis-sized file
        init_params(cfg, model_cfg, controller_size(model_cfg, hps_of(model_cfg.rnn_path)))
    return None


def before_settings():
    """What a checkpoint that lacks a later-added setting of run_settings ran with."""
    return {**config.before_options(TrainConfig),
            **{f"dream.{k}": v for k, v in config.before_options(DreamConfig).items()}}


def load_checkpoint(cfg, model_cfg, env_cfg, num_params, dream_cfg=None):
    """(state, numpy RNG state) of the run's checkpoint, its optimizer (state["es"]) built from the
    run's settings and filled with the checked fields of the file; one line on any problem."""
    return train_checkpoint.load(train_logs.log_base(cfg, env_cfg) + train_logs.CHECKPOINT_SUFFIX,
                                 run_settings(cfg, model_cfg, env_cfg, dream_cfg), before_settings(),
                                 lambda: make_es(cfg, num_params), cfg.eval_steps)


class Run:
    """A training run's record: the optimizer and `state`, from which the five logs are written.

    The checkpoint is written before the logs at each step, so a kill at any instant leaves a
    checkpoint that --resume continues (rewriting the logs from it), and a generation whose
    evaluation was cut short resumes with that evaluation, not with the generation again."""

    def __init__(self, cfg, model_cfg, env_cfg, num_params, dream_cfg=None, loaded=None):
        self.cfg, self.base = cfg, train_logs.log_base(cfg, env_cfg)
        self.checkpoint_path = self.base + train_logs.CHECKPOINT_SUFFIX
        self.settings = run_settings(cfg, model_cfg, env_cfg, dream_cfg)
        self.tb = None
        if cfg.resume:
            saved, np_random = loaded or load_checkpoint(cfg, model_cfg, env_cfg, num_params, dream_cfg)
            self.es = saved.pop("es")
            np.random.set_state(np_random)
            self.state = {k: saved[k] for k in train_checkpoint.STATE_KEYS}
            self.write_logs()
            print(f"resuming {self.base} after generation {self.state['t']}"
                  + (" (its evaluation first)" if self.state["pending_eval"] else ""), flush=True)
        else:
            self.es = make_es(cfg, num_params, init_params(cfg, model_cfg, num_params))
            np.random.seed(cfg.seed_start)  # the original's Seeder, seeded after the optimizer was built
            self.state = dict(t=0, pending_eval=False, elapsed=0, history=[], history_best=[], eval_log=[],
                              current_param=None, best_reward_eval=0, best_params_eval=None, max_len=-1, env_steps=0)
        self.start_time = int(time.time()) - self.state["elapsed"]
        self.purge_step = self.state["t"] + 1  # a resumed run replaces TensorBoard's points after its checkpoint

    def seconds(self):
        return int(time.time()) - self.start_time

    def finished(self):
        return not self.state["pending_eval"] and 0 < self.cfg.max_generations <= self.state["t"]

    def save(self):
        """Checkpoint, then the logs: the checkpoint is the record the logs are made from."""
        self.state["elapsed"] = self.seconds()
        train_checkpoint.save(self.checkpoint_path, self.settings, self.es, self.state, np.random.get_state())
        self.write_logs()

    def write_logs(self):
        s = self.state
        logs = {".json": [s["current_param"]], ".hist.json": s["history"]}
        if s["eval_log"]:
            logs.update({".log.json": s["eval_log"], ".best.json": [s["best_params_eval"], s["best_reward_eval"]],
                         ".hist_best.json": s["history_best"]})
        for suffix, content in logs.items():
            train_logs.write(self.base, suffix, content)

    def scalars(self, prefix, values):
        """TensorBoard scalars of generation t (the writer is made on first use: a run that fails
        before its first generation leaves no folder behind)."""
        if self.tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(os.path.join(self.cfg.log_dir, "tensorboard", os.path.basename(self.base)),
                                    purge_step=self.purge_step)
            self.tb.add_text("config", "  \n".join(f"{k}: {v}" for k, v in self.settings.items()))
        for name, value in values.items():
            self.tb.add_scalar(f"{prefix}/{name}", value, self.state["t"])
        self.tb.flush()


def generation_seeds(cfg, population):
    """Each candidate's episode seed, from the global np.random: the original's, one per candidate
    or per antithetic pair; with --common_tracks 1, one for the whole generation (every candidate
    runs the same tracks, new ones each generation)."""
    if cfg.common_tracks:
        return np.random.randint(np.int32(2**31 - 1), size=1).tolist() * population
    seeds = np.random.randint(np.int32(2**31 - 1), size=population // 2 if cfg.antithetic else population).tolist()
    return seeds + seeds if cfg.antithetic else seeds


def run_generation(run, workers):
    """Sample, evaluate and tell one generation; record its history row. Returns its env steps."""
    cfg, es, state = run.cfg, run.es, run.state
    population = cfg.num_worker * cfg.num_worker_trial
    solutions = es.ask()
    reward_list, time_list = workers.evaluate(generation_seeds(cfg, population), solutions, max_len=state["max_len"])
    es.tell(reward_list)

    t = state["t"] + 1
    mean_time_step, max_time_step = trunc2(np.mean(time_list)), trunc2(np.max(time_list))
    row = HistoryRow(t, run.seconds(), trunc2(np.mean(reward_list)), trunc2(np.min(reward_list)),
                     trunc2(np.max(reward_list)), trunc2(np.std(reward_list)), int(es.rms_stdev() * 100000) / 100000.0,
                     mean_time_step + 1.0, int(max_time_step) + 1)
    steps = float(np.sum((np.asarray(time_list) + 1) * cfg.num_episode))
    state.update(t=t, pending_eval=t % cfg.eval_steps == 0, history=state["history"] + [list(row)],
                 current_param=np.array(es.current_param()).round(4).tolist(),
                 max_len=2 * int(mean_time_step + 1.0) if cfg.cap_time else -1, env_steps=state["env_steps"] + steps)
    if t == 1:
        state["best_reward_eval"] = row.mean  # the original's first "prev"
    run.save()
    run.scalars("charts", dict(reward_mean=row.mean, reward_max=row.max, reward_min=row.min, reward_std=row.std,
                               rms_stdev=row.rms_stdev, mean_timesteps=row.mean_steps))
    return steps


def evaluate_mean(run, workers):
    """The original's evaluation of current_param on seeds 0..popsize-1; best.json keeps the best.
    Returns (its mean reward, its env steps)."""
    cfg, state = run.cfg, run.state
    population = cfg.num_worker * cfg.num_worker_trial
    params, prev_best = state["current_param"], state["best_reward_eval"]
    eval_rewards, eval_times = workers.evaluate(np.arange(population), [np.array(params)] * population, train_mode=0)
    reward_eval = float(np.mean(eval_rewards))
    state["eval_log"] = state["eval_log"] + [[state["t"], reward_eval, params]]
    if len(state["eval_log"]) == 1 or reward_eval > prev_best:
        state["best_reward_eval"], state["best_params_eval"] = reward_eval, params
    elif cfg.retrain:
        print(f"reset to previous best params, where best_reward_eval = {prev_best}", flush=True)
        run.es.set_mu(state["best_params_eval"])
    state["history_best"] = state["history_best"] + [[state["t"], run.seconds(), "improvement", reward_eval - prev_best,
                                                      "curr", reward_eval, "prev", prev_best,
                                                      "best", state["best_reward_eval"]]]
    steps = float(np.sum((np.asarray(eval_times) + 1) * cfg.num_episode))
    state.update(pending_eval=False, env_steps=state["env_steps"] + steps)
    run.save()
    run.scalars("eval", dict(reward=reward_eval, best_reward=state["best_reward_eval"]))
    return reward_eval, steps


def master(cfg, model_cfg, env_cfg, dream_cfg=None, loaded=None):
    """Rank 0: the original's master loop, as the steps of a generation: sample and tell, every
    eval_steps generations evaluate the mean, checkpoint and log after each; stop after
    max_generations. `loaded`: the checkpoint preflight read, when resuming."""
    num_params = controller_size(model_cfg, hps_of(model_cfg.rnn_path))  # M's sizes are its file's
    run = Run(cfg, model_cfg, env_cfg, num_params, dream_cfg, loaded)
    workers = Workers(cfg, num_params)
    print(f"training {env_cfg.env_name} with {cfg.optimizer}: population {cfg.num_worker * cfg.num_worker_trial}, "
          f"{cfg.num_worker} workers, {cfg.num_worker_trial} trial(s) each, {cfg.num_episode} episode(s) per solution, "
          f"{num_params} parameters; np.random seeded with --seed_start {cfg.seed_start}", flush=True)
    while not run.finished():
        if run.state["t"]:
            workers.hint = f"; generation {run.state['t']} is checkpointed: rerun with --resume to continue"
        gen_start, master_cpu, steps, reward_eval = time.monotonic(), time.process_time(), 0.0, None
        if not run.state["pending_eval"]:
            steps += run_generation(run, workers)
        if run.state["pending_eval"]:
            reward_eval, eval_steps = evaluate_mean(run, workers)
            steps += eval_steps
        seconds = time.monotonic() - gen_start
        run.scalars("charts", dict(env_steps_per_second=steps / seconds, env_steps=run.state["env_steps"]))
        print_generation(run, reward_eval, steps / seconds, seconds, time.process_time() - master_cpu)
    if run.tb is not None:
        run.tb.close()
    workers.stop()


def print_generation(run, reward_eval, steps_per_second, seconds, master_cpu):
    h = HistoryRow(*run.state["history"][-1])
    best = f"{run.state['best_reward_eval']:.2f}" if run.state["eval_log"] else "-"
    this_eval = f" (this eval {reward_eval:.2f})" if reward_eval is not None else ""
    print(f"gen {h.gen}  reward mean {h.mean:.2f} max {h.max:.2f} min {h.min:.2f} std {h.std:.2f}  "
          f"rms_stdev {h.rms_stdev:.5f}  best eval {best}{this_eval}  {steps_per_second:.0f} env steps/s  "
          f"{seconds:.1f} s (master CPU {master_cpu:.2f} s)", flush=True)


def main():
    cfg, model_cfg, env_cfg, dream_cfg = config.parse(TrainConfig, ModelConfig, EnvConfig, DreamConfig,
                                                      description=__doc__.split("\n\n")[0])
    if mpi.size == 1 and not os.environ.get("IN_MPI"):
        preflight(cfg, model_cfg, env_cfg, dream_cfg)  # refuse before starting MPI
    status = mpi.fork(cfg.num_worker + 1)
    if status is not None:  # we were the launcher: mpiexec ran the job
        if status not in (0, 2, 130):
            raise UserError(f"the MPI job failed (mpiexec exit status {status}: an MPI process died or was killed); "
                            "rerun with --resume to continue from the last finished generation")
        sys.exit(status)
    if mpi.size != cfg.num_worker + 1:
        raise UserError(f"-n {cfg.num_worker} needs {cfg.num_worker + 1} MPI processes (mpiexec -n "
                        f"{cfg.num_worker + 1}), found {mpi.size}")
    loaded = preflight(cfg, model_cfg, env_cfg, dream_cfg)  # every rank: a refusal ends the job without MPI_Abort
    if mpi.rank == 0:
        torch.set_num_threads(1)
        try:
            master(cfg, model_cfg, env_cfg, dream_cfg, loaded)
        except BaseException as e:  # the workers wait for packets forever: take the job down
            if not (isinstance(e, SystemExit) and not e.code):
                message = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
                if isinstance(e, KeyboardInterrupt):
                    message = "interrupted"
                print(f"train.py: error: {message}", file=sys.stderr, flush=True)
                if not isinstance(e, (UserError, KeyboardInterrupt)):
                    traceback.print_exc()
                code = 2 if isinstance(e, UserError) else 1
                # MPICH's proxy forwards our stderr asynchronously, and an abort that reaches it
                # first ends the job with the line unsent (seen once in CI): give it time to go
                time.sleep(ABORT_GRACE_SECONDS)
                mpi.comm.Abort(code)
                os._exit(code)  # MPICH's Abort may return to the caller before the launcher ends the job
            raise
    else:
        set_torch_for_acting(model_cfg.envs_per_worker)
        worker(cfg, model_cfg, env_cfg, dream_cfg)


if __name__ == "__main__":
    cli.run(main)
