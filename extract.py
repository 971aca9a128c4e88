"""Record random rollouts of CarRacing for training V and M: `<dir_name>/<episode seed>.npz`.

    python extract.py                              # 200 episodes of 1000 frames into record/
    mpiexec -n 2 python extract.py --max_trials 4  # 2 processes x 4 episodes
    python extract.py --config smoke               # 16 episodes of 200 frames

Each file holds `obs` (T, 64, 64, 3) uint8, where obs[t] is the frame action[t] was chosen
on (obs[0] is the reset frame), and `action` (T, 3) float16 = (steer, gas, brake), T =
max_frames (episodes never end early: full_episode=True).

The data policy is the original's. Its extract.py drove with an agent whose V, M and
controller were all freshly random: controller parameters Cauchy * s with s ~ U(0, 0.01),
and V and M weights so small (Cauchy * s / 10000) that V's z is fresh N(0, I) noise every
step and M's h stays 0. We compute that policy directly, without building V and M:
a = tanh(z @ W_z + b) with z ~ N(0, I), then gas = (a1 + 1) / 2, brake = clip(a2, 0, 1).

Episode seeds: under `mpiexec -n N` rank r records the episodes of global index
i in [r * max_trials, (r + 1) * max_trials). Episode i gets the seed
    (A * i + B * (seed + 1)) mod P,   P = 2**31 - 1 (prime), A = 742938285, B = 950706376,
in [0, 2**31 - 1) like the original's `random.randint` names. For a fixed --seed, i -> seed
is a bijection (A is invertible mod the prime P), so no two episodes share a file, and
2 ranks x k episodes write exactly the files of 1 rank x 2k episodes. The seed names the
file and seeds both the track and the policy, so a file's content depends on its name only.

With --envs_per_worker K, a process steps K episodes in lockstep (K envs); the files are the
same for every K.

Re-running resumes: complete files (right length) are skipped, the rest are recorded again.
"""
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm

import atomic
import controller
import mpi
from cli import UserError, run
from config import EnvConfig, ExtractConfig, RNNConfig, VAEConfig, parse
from env import SCREEN_X, SCREEN_Y, env_from_config
from episodes import array_header

SEED_MODULUS = 2**31 - 1
SEED_MULTIPLIER = 742938285
SEED_OFFSET = 950706376
PROGRESS_TAG = 7  # MPI tag of the progress messages sent to rank 0
PROGRESS_EVERY = 50  # frames between progress reports


def episode_seed(seed, index):
    """The seed (and file name) of episode `index` of a run started with --seed `seed`."""
    return (SEED_MULTIPLIER * index + SEED_OFFSET * (seed + 1)) % SEED_MODULUS


def random_controller(rs):
    """The original's untrained agent as a policy: returns act() -> np.array([steer, gas, brake]).

    Draws, from RandomState `rs`, the controller scale s ~ U(0, 0.01), its 867 = 3 + 288 * 3
    parameters (b, then W over [z, h] row-major) as Cauchy * s, and a fresh z ~ N(0, I) per
    call. z and h have the original agent's sizes (VAEConfig.z_size, RNNConfig.rnn_size).
    """
    z_size, h_size = VAEConfig().z_size, RNNConfig().rnn_size
    s = rs.rand() * 0.01
    params = rs.standard_cauchy(controller.param_count(z_size + h_size)) * s
    ((weight, bias),) = controller.layers(params, z_size + h_size)
    w_z = weight[:z_size]  # h = 0, so W's h rows never contribute

    def act():
        return controller.env_action(np.tanh(rs.randn(z_size) @ w_z + bias))

    return act


def is_complete(path, frames):
    """Whether `path` is an episode file of `frames` frames; reads only the two array headers."""
    try:
        return (array_header(path, "obs") == ((frames, SCREEN_Y, SCREEN_X, 3), np.uint8)
                and array_header(path, "action") == ((frames, 3), np.float16))
    except UserError:
        return False


class Progress:
    """One tqdm bar on rank 0 counting the frames of all ranks.

    Other ranks send small non-blocking messages (frames, finished) to rank 0, which drains
    them whenever it reports its own progress, and at the end polls (without spinning) until
    every rank has finished. Ranks may have different amounts of work (resume).
    """

    def __init__(self, total, initial):
        self.bar = tqdm(total=total, initial=initial, unit="frame", desc="extract",
                        smoothing=0.1, dynamic_ncols=True) if mpi.rank == 0 else None
        self.finished = 0
        self.pending = 0
        self.sends = []

    def add(self, frames):
        self.pending += frames
        if self.pending < PROGRESS_EVERY:
            return
        if self.bar is not None:
            self.bar.update(self.pending)
            self._drain()
        else:
            self.sends = [r for r in self.sends if not r.Test()]
            self.sends.append(mpi.comm.isend((self.pending, False), dest=0, tag=PROGRESS_TAG))
        self.pending = 0

    def close(self):
        """Report the last frames; on rank 0, wait until every other rank has finished."""
        if self.bar is None:
            self.sends.append(mpi.comm.isend((self.pending, True), dest=0, tag=PROGRESS_TAG))
            for r in self.sends:
                mpi.wait(r)
            return
        self.bar.update(self.pending)
        while self.finished < mpi.size - 1:
            if not self._drain():
                time.sleep(mpi.POLL_SECONDS)
        self.bar.close()

    def _drain(self):
        """Receive every progress message already arrived; whether there was any."""
        status, got = mpi.MPI.Status(), False
        while mpi.comm.iprobe(source=mpi.MPI.ANY_SOURCE, tag=PROGRESS_TAG, status=status):
            frames, finished = mpi.comm.recv(source=status.Get_source(), tag=PROGRESS_TAG)
            self.bar.update(frames)
            self.finished += finished
            got = True
        return got


def record(envs, seeds, max_frames, progress):
    """Episodes of the random policy on the tracks of `seeds`, one per env, stepped in lockstep:
    [(obs, action) arrays of max_frames frames]. Each episode depends on its seed only."""
    acts = [random_controller(np.random.RandomState(seed)) for seed in seeds]
    obs = []
    for env, seed in zip(envs, seeds):
        env.seed(seed)
        obs.append(env.reset())
    recording_obs = np.empty((len(seeds), max_frames, SCREEN_Y, SCREEN_X, 3), np.uint8)
    recording_action = np.empty((len(seeds), max_frames, 3), np.float16)
    for frame in range(max_frames):
        for k, (env, act) in enumerate(zip(envs, acts)):
            recording_obs[k, frame] = obs[k]
            action = act()
            recording_action[k, frame] = action
            obs[k], reward, done, info = env.step(action)  # done is always False with full_episode=True
        progress.add(len(seeds))
    return list(zip(recording_obs, recording_action))


def _save_all(paths, episodes):
    for path, (obs, action) in zip(paths, episodes):
        atomic.save_npz(path, obs=obs, action=action)


def main():
    env_cfg, cfg = parse(EnvConfig, ExtractConfig, description=__doc__.split("\n\n")[0])
    atomic.check_writable(cfg.dir_name)

    # This rank's episodes; complete files from an earlier run are skipped.
    first = mpi.rank * cfg.max_trials
    seeds = [episode_seed(cfg.seed, i) for i in range(first, first + cfg.max_trials)]
    paths = [os.path.join(cfg.dir_name, f"{s}.npz") for s in seeds]
    todo = [(s, p) for s, p in zip(seeds, paths) if not is_complete(p, cfg.max_frames)]
    counts = np.array([len(todo), cfg.max_trials - len(todo)])
    totals = np.zeros_like(counts)
    mpi.wait(mpi.comm.Iallreduce(counts, totals))
    progress = Progress(total=totals.sum() * cfg.max_frames, initial=totals[1] * cfg.max_frames)

    envs = [env_from_config(env_cfg, full_episode=True) for _ in range(min(cfg.envs_per_worker, max(len(todo), 1)))]
    with ThreadPoolExecutor(max_workers=1) as saver:  # compress and write while the next episodes run
        saving = None
        for start in range(0, len(todo), len(envs)):
            batch = todo[start:start + len(envs)]
            episodes = record(envs, [seed for seed, _ in batch], cfg.max_frames, progress)
            if saving is not None:
                saving.result()
            saving = saver.submit(_save_all, [path for _, path in batch], episodes)
        if saving is not None:
            saving.result()
    for env in envs:
        env.close()
    progress.close()
    if mpi.rank == 0:
        print(f"{totals[0]} episodes recorded, {totals[1]} already complete, in {cfg.dir_name}/")


if __name__ == "__main__":
    run(main)
