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
  packet through K lockstep envs (model.simulate_batch: same tracks, z noise per episode);
- options off in the original: `--train_renderer` renders the training episodes with another
  renderer (evaluations keep --renderer), `--no_reward_steps N` ends a training episode after
  N steps without a positive reward (evaluations run full episodes);
- every `eval_steps` generations the optimizer's current_param (CMA: the mean) is evaluated on
  seeds 0..popsize-1 (1024 episodes at paper scale) and `best.json` keeps the best evaluation.
Seeds come from the global np.random, seeded with `seed_start` once after the optimizer is
built; pycma samples from the same generator, so a run is determined by its settings.

Logs, named `<log_dir>/carracing.<optimizer>.<num_episode>.<popsize>` + (the original's formats):
  .json           [current_param rounded to 4 d.p.]                 every generation
  .hist.json      rows [gen, seconds, mean, min, max, std, rms_stdev, mean_steps, max_steps]
  .log.json       rows [gen, eval_reward, params]                    every evaluation
  .best.json      [params of the best evaluation, its reward]
  .hist_best.json rows [gen, seconds, "improvement", d, "curr", r, "prev", p, "best", b]
plus `.checkpoint.pkl` (optimizer, RNG and histories; `--resume` continues exactly) and
TensorBoard scalars in `<log_dir>/tensorboard/<name>`. A packet of zeros stops a worker.
"""
import dataclasses
import io
import json
import os
import pickle
import sys
import time
import traceback

import numpy as np

import atomic
import config
import mpi
from cli import UserError, run
from config import ES_ARGS, EnvConfig, ModelConfig, TrainConfig
from es import CMAES, PEPG, OpenES, SimpleGA

PRECISION = 10000  # params travel as int32(round(p * 1e4)), results as int32(value * 1e4)
TAG_WORK = 0  # packets and results
TAG_FAILED = 7  # a worker's last words (pickled str), sent when it stops for any reason but the master's order
OPTIMIZERS = {"cma": CMAES, "ses": PEPG, "pepg": PEPG, "ga": SimpleGA, "openes": OpenES}
LOGS = (".json", ".hist.json", ".hist_best.json", ".best.json", ".log.json")


def parse_args():
    """(TrainConfig, ModelConfig, EnvConfig, resume)."""
    p = config.parser(TrainConfig, ModelConfig, EnvConfig, description=__doc__.split("\n\n")[0])
    p.add_argument("--resume", action="store_true",
                   help="continue the run of these settings from <log base>.checkpoint.pkl (written every generation); "
                        "the logs come out as if the run had never stopped")
    args = p.parse_args()
    return (*config.from_args(args, TrainConfig, ModelConfig, EnvConfig), args.resume)


# --- packets ------------------------------------------------------------------------------------

def encode_solution_packets(seeds, solutions, num_worker, train_mode=1, max_len=-1):
    """One int32 packet per worker; job i goes to worker i // num_worker_trial + 1."""
    trials = len(seeds) // num_worker
    rows = [np.concatenate([[i // trials + 1, i, seeds[i], train_mode, max_len], np.round(np.asarray(s) * PRECISION)])
            for i, s in enumerate(solutions)]
    return np.split(np.concatenate(rows).astype(np.int32), num_worker)


def decode_solution_packet(packet, num_worker_trial):
    """[(worker_id, job_index, seed, train_mode, max_len, params as float), ...]."""
    return [(int(p[0]), int(p[1]), int(p[2]), int(p[3]), int(p[4]), p[5:].astype(np.float64) / PRECISION)
            for p in np.split(packet, num_worker_trial)]


def encode_result_packet(results):
    """results: [(worker_id, job_index, fitness, timesteps), ...] -> int32 (values * 1e4, truncated)."""
    r = np.array(results, dtype=np.float64)
    r[:, 2:4] *= PRECISION
    return r.flatten().astype(np.int32)


def decode_result_packet(packet, num_worker_trial):
    r = packet.reshape(num_worker_trial, 4)
    return [(int(w), int(j), f / PRECISION, t / PRECISION) for w, j, f, t in r.astype(np.float64)]


# --- the worker ---------------------------------------------------------------------------------

def worker_models(cfg, model_cfg, env_cfg):
    """The worker's agents by packet train_mode: 0 (evaluations) renders with env_cfg.renderer,
    1 (training) with cfg.train_renderer when set; one agent when they are the same."""
    from model import make_model

    models = {0: make_model(cfg=model_cfg, env_cfg=env_cfg)}
    train_env_cfg = dataclasses.replace(env_cfg, renderer=cfg.train_renderer or env_cfg.renderer)
    models[1] = models[0] if train_env_cfg == env_cfg else make_model(cfg=model_cfg, env_cfg=train_env_cfg)
    if model_cfg.envs_per_worker == 1:
        for model in set(models.values()):
            model.make_env()
    return models


def worker(cfg, model_cfg, env_cfg):
    """Rank >= 1: build the agent once, then evaluate packets until a stop packet arrives."""
    from model import simulate, simulate_batch

    try:
        models = worker_models(cfg, model_cfg, env_cfg)
        packet = np.empty((5 + models[0].param_count) * cfg.num_worker_trial, dtype=np.int32)
        while True:
            mpi.wait(mpi.comm.Irecv(packet, source=0, tag=TAG_WORK))
            if packet[0] == 0:  # the master's stop
                return
            jobs = decode_solution_packet(packet, cfg.num_worker_trial)
            for worker_id, *_ in jobs:
                if worker_id != mpi.rank:
                    raise RuntimeError(f"packet for worker {worker_id} arrived at rank {mpi.rank}")
            _, _, _, train_mode, max_len, _ = jobs[0]  # one train_mode and max_len per packet
            model = models[train_mode]
            if model_cfg.envs_per_worker == 1:  # the original: one simulate call per solution
                episodes = []
                for _, _, seed, _, _, params in jobs:
                    model.set_model_params(params)
                    episodes.append(simulate(model, train_mode=train_mode == 1, render_mode=False,
                                             num_episode=cfg.num_episode, seed=seed, max_len=max_len,
                                             no_reward_steps=cfg.no_reward_steps))
            else:  # every episode of the packet through K lockstep envs (model.simulate_batch)
                episodes = simulate_batch(model, [j[5] for j in jobs], [j[2] for j in jobs], num_episode=cfg.num_episode,
                                          num_envs=model_cfg.envs_per_worker, train_mode=train_mode == 1, max_len=max_len,
                                          no_reward_steps=cfg.no_reward_steps)
            results = [(worker_id, job, np.mean(rewards), np.mean(t_list))
                       for (worker_id, job, *_), (rewards, t_list) in zip(jobs, episodes)]
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
        packets = encode_solution_packets(seeds, solutions, cfg.num_worker, train_mode, max_len)
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


def make_es(cfg, num_params):
    """The optimizer with the original train.py's arguments for `cfg.optimizer`."""
    kwargs = dict(ES_ARGS[cfg.optimizer], sigma_init=cfg.sigma_init, popsize=cfg.num_worker * cfg.num_worker_trial)
    if cfg.optimizer != "cma":
        kwargs["sigma_decay"] = cfg.sigma_decay
    if cfg.optimizer == "openes":
        kwargs["antithetic"] = cfg.antithetic == 1
    try:
        return OPTIMIZERS[cfg.optimizer](num_params, **kwargs)
    except ValueError as e:
        raise UserError(f"--optimizer {cfg.optimizer} with population {kwargs['popsize']}: {e}") from None


class _GlobalRNGPickler(pickle.Pickler):
    """Pickles numpy's global RandomState as a reference, so a restored pycma object samples from
    the live global generator (whose state is saved separately) and not from a private copy."""

    def reducer_override(self, obj):
        if obj is np.random.mtrand._rand:
            return _global_rng, ()
        return NotImplemented


def _global_rng():
    return np.random.mtrand._rand


def save_checkpoint(path, state):
    buf = io.BytesIO()
    _GlobalRNGPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
    atomic.write_bytes(path, buf.getvalue())


def load_checkpoint(path, settings):
    try:
        with open(path, "rb") as f:
            state = pickle.load(f)
    except FileNotFoundError:
        raise UserError(f"{path}: no checkpoint to resume (run without --resume to start)") from None
    except Exception as e:
        raise UserError(f"{path}: not a train.py checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or "settings" not in state:
        raise UserError(f"{path}: not a train.py checkpoint")
    changed = [k for k in settings if state["settings"].get(k) != settings[k]]
    if changed:
        raise UserError(f"{path}: written with other settings ({', '.join(changed)}); resume needs the same ones")
    return state


def run_settings(cfg, model_cfg, env_cfg):
    """The settings a resumed run must share with the run it continues."""
    t = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("max_generations", "log_dir")}
    return {**t, **{f"model.{k}": v for k, v in dataclasses.asdict(model_cfg).items() if k not in ("vae_path", "rnn_path")},
            **{f"env.{k}": v for k, v in dataclasses.asdict(env_cfg).items()}}


def trunc2(x):
    """The original's int(x * 100) / 100 (truncation to 2 decimals)."""
    return int(x * 100) / 100.0


def master(cfg, model_cfg, env_cfg, resume=False):
    """Rank 0: the original's master loop, plus checkpoints, resume and a stop after max_generations."""
    from model import param_count

    population = cfg.num_worker * cfg.num_worker_trial
    base = os.path.join(cfg.log_dir, f"{env_cfg.env_name}.{cfg.optimizer}.{cfg.num_episode}.{population}")
    checkpoint_path = base + ".checkpoint.pkl"
    num_params = param_count(model_cfg.exp_mode)
    settings = run_settings(cfg, model_cfg, env_cfg)
    atomic.check_writable(cfg.log_dir)
    for path in (model_cfg.vae_path, model_cfg.rnn_path):
        if not os.path.isfile(path):
            raise UserError(f"{path}: no such file (the workers load it)")

    if resume:
        state = load_checkpoint(checkpoint_path, settings)
        es = state["es"]
        np.random.set_state(state["np_random"])
        print(f"resuming {base} after generation {state['t']}", flush=True)
    else:
        existing = [base + s for s in LOGS + (".checkpoint.pkl",) if os.path.exists(base + s)]
        if existing:
            raise UserError(f"{existing[0]}: a run with these settings exists; pass --resume to continue it, "
                            "or move its files or choose another --log_dir")
        es = make_es(cfg, num_params)
        np.random.seed(cfg.seed_start)  # the original's Seeder, seeded after the optimizer was built
        state = dict(settings=settings, t=0, elapsed=0, history=[], history_best=[], eval_log=[],
                     best_reward_eval=0, best_params_eval=None, max_len=-1)
    print(f"training {env_cfg.env_name} with {cfg.optimizer}: population {population}, {cfg.num_worker} workers, "
          f"{cfg.num_worker_trial} trial(s) each, {cfg.num_episode} episode(s) per solution", flush=True)

    from torch.utils.tensorboard import SummaryWriter

    tb = SummaryWriter(os.path.join(cfg.log_dir, "tensorboard", os.path.basename(base)), purge_step=state["t"] + 1)
    workers = Workers(cfg, num_params)
    if state["t"]:
        workers.hint = f"; generation {state['t']} is checkpointed: rerun with --resume to continue"
    start_time = int(time.time()) - state["elapsed"]
    history, history_best, eval_log = state["history"], state["history_best"], state["eval_log"]
    t = state["t"]
    while cfg.max_generations == 0 or t < cfg.max_generations:
        t += 1
        gen_start, master_cpu = time.monotonic(), time.process_time()
        solutions = es.ask()
        if cfg.antithetic:
            seeds = np.random.randint(np.int32(2**31 - 1), size=population // 2).tolist()
            seeds = seeds + seeds
        else:
            seeds = np.random.randint(np.int32(2**31 - 1), size=population).tolist()
        reward_list, time_list = workers.evaluate(seeds, solutions, max_len=state["max_len"])
        es.tell(reward_list)

        mean_time_step = trunc2(np.mean(time_list))
        max_time_step = trunc2(np.max(time_list))
        curr_time = int(time.time()) - start_time
        h = (t, curr_time, trunc2(np.mean(reward_list)), trunc2(np.min(reward_list)), trunc2(np.max(reward_list)),
             trunc2(np.std(reward_list)), int(es.rms_stdev() * 100000) / 100000.0, mean_time_step + 1.0,
             int(max_time_step) + 1)
        state["max_len"] = 2 * int(mean_time_step + 1.0) if cfg.cap_time else -1
        history.append(h)
        atomic.save_json(base + ".json", [np.array(es.current_param()).round(4).tolist()],
                         sort_keys=True, indent=2, separators=(",", ": "))
        atomic.save_json(base + ".hist.json", history, sort_keys=False, indent=0, separators=(",", ":"))
        steps = float(np.sum((time_list + 1) * cfg.num_episode))

        if t == 1:
            state["best_reward_eval"] = h[2]
        if t % cfg.eval_steps == 0:
            prev_best = state["best_reward_eval"]
            params = np.array(es.current_param()).round(4)
            eval_rewards, eval_times = workers.evaluate(np.arange(population), [params] * population, train_mode=0)
            steps += float(np.sum((eval_times + 1) * cfg.num_episode))
            reward_eval = float(np.mean(eval_rewards))
            params = params.tolist()
            improvement = reward_eval - prev_best
            eval_log.append([t, reward_eval, params])
            atomic.save_json(base + ".log.json", eval_log)
            if len(eval_log) == 1 or reward_eval > prev_best:
                state["best_reward_eval"], state["best_params_eval"] = reward_eval, params
            elif cfg.retrain:
                print(f"reset to previous best params, where best_reward_eval = {prev_best}", flush=True)
                es.set_mu(state["best_params_eval"])
            atomic.save_json(base + ".best.json", [state["best_params_eval"], state["best_reward_eval"]],
                             sort_keys=True, indent=0, separators=(",", ": "))
            curr_time = int(time.time()) - start_time
            history_best.append([t, curr_time, "improvement", improvement, "curr", reward_eval, "prev", prev_best,
                                 "best", state["best_reward_eval"]])
            atomic.save_json(base + ".hist_best.json", history_best, sort_keys=False, indent=0, separators=(",", ":"))
            tb.add_scalar("eval/reward", reward_eval, t)
            tb.add_scalar("eval/best_reward", state["best_reward_eval"], t)

        state.update(t=t, elapsed=int(time.time()) - start_time, es=es, np_random=np.random.get_state())
        save_checkpoint(checkpoint_path, state)
        workers.hint = f"; generation {t} is checkpointed: rerun with --resume to continue"

        seconds = time.monotonic() - gen_start
        best = f"{state['best_reward_eval']:.2f}" if eval_log else "-"
        print(f"gen {t}  reward mean {h[2]:.2f} max {h[4]:.2f} min {h[3]:.2f} std {h[5]:.2f}  rms_stdev {h[6]:.5f}  "
              f"best eval {best}" + (f" (this eval {reward_eval:.2f})" if t % cfg.eval_steps == 0 else "") +
              f"  {steps / seconds:.0f} env steps/s  {seconds:.1f} s (master CPU {time.process_time() - master_cpu:.2f} s)",
              flush=True)
        for name, value in (("reward_mean", h[2]), ("reward_max", h[4]), ("reward_min", h[3]), ("reward_std", h[5]),
                            ("rms_stdev", h[6]), ("mean_timesteps", h[7])):
            tb.add_scalar(f"charts/{name}", value, t)
        tb.add_scalar("perf/env_steps_per_second", steps / seconds, t)
        tb.flush()
    tb.close()
    workers.stop()


def main():
    cfg, model_cfg, env_cfg, resume = parse_args()
    status = mpi.fork(cfg.num_worker + 1)
    if status is not None:  # we were the launcher: mpiexec ran the job
        if status not in (0, 2, 130):
            raise UserError(f"the MPI job failed (mpiexec exit status {status}: an MPI process died or was killed, "
                            "see above); rerun with --resume to continue from the last finished generation")
        sys.exit(status)
    if mpi.size != cfg.num_worker + 1:
        raise UserError(f"-n {cfg.num_worker} needs {cfg.num_worker + 1} MPI processes (mpiexec -n "
                        f"{cfg.num_worker + 1}), found {mpi.size}")
    import torch

    torch.set_num_threads(1)
    if mpi.rank == 0:
        try:
            master(cfg, model_cfg, env_cfg, resume)
        except BaseException as e:  # the workers wait for packets forever: take the job down
            if not (isinstance(e, SystemExit) and not e.code):
                message = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
                if isinstance(e, KeyboardInterrupt):
                    message = "interrupted"
                print(f"train.py: error: {message}", file=sys.stderr, flush=True)
                if not isinstance(e, (UserError, KeyboardInterrupt)):
                    traceback.print_exc()
                code = 2 if isinstance(e, UserError) else 1
                mpi.comm.Abort(code)
                os._exit(code)  # MPICH's Abort may return to the caller before the launcher ends the job
            raise
    else:
        worker(cfg, model_cfg, env_cfg)


if __name__ == "__main__":
    run(main)
