"""Record random rollouts of CarRacing for training V and M: `<dir_name>/<episode seed>.npz`.

    python extract.py                              # 200 episodes of 1000 frames into record/
    mpiexec -n 2 python extract.py --max_trials 4  # 2 processes x 4 episodes
    python extract.py --config smoke               # 16 episodes of 200 frames

Each file holds `obs` (T, 64, 64, 3) uint8, where obs[t] is the frame action[t] was chosen
on (obs[0] is the reset frame), and `action` (T, 3) float16 = (steer, gas, brake), T =
max_frames (episodes never end early: full_episode=True). With --record_rewards (off by
default: the original's files) it also holds `reward` (T,) float32, the reward env.step paid
for action[t], and `done` (T,) bool, whether that step would have ended the episode
(Gymnasium's terminated: every tile visited, or the car off the playfield); the original's
readers ignore the extra arrays.

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

With --envs_per_worker K, a process steps K episodes in lockstep (K envs); the random policy's
files are the same for every K.

Data driven by a trained agent (off by default; the original records only its random policy):
--controller FILE drives a share of the episodes (--agent_share, spread evenly over the episode
indices) with that controller and the agent's V and M (--vae_path, --rnn_path, --exp_mode), z
sampled as in agent.rollout.simulate_batch from a stream of the episode's own (seed, 0); with
--action_noise sigma each action gets N(0, sigma) noise from the stream (seed, 0, 1), clipped to
the action space, and the action taken is recorded (and fed to M). An agent episode runs beside
the other agent episodes of its group of K (this rank's agent episodes in order, K at a time),
whose batched V rounds its floats alike; so its file depends on its seed, K and the rank count,
and a resumed run re-records whole groups. `<dir_name>/policies.json` records the policy of
every episode file and the settings (file hashes included) they were recorded with; a run with
other settings in the same folder is refused (a folder without it holds the random policy's).

Re-running resumes: complete files (right length) are skipped, the rest are recorded again.
"""
import dataclasses
import hashlib
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm

from agent import controller
from config import EnvConfig, ExtractConfig, ModelConfig, RNNConfig, VAEConfig, parse
from env import env_from_config
from files import atomic, json_data
from files.episodes import FRAME_SHAPE, array_header
from plumbing import mpi
from plumbing.cli import UserError, run

SEED_MODULUS = 2**31 - 1
SEED_MULTIPLIER = 742938285
SEED_OFFSET = 950706376
PROGRESS_TAG = 7  # MPI tag of the progress messages sent to rank 0
PROGRESS_EVERY = 50  # frames between progress reports
POLICIES = "policies.json"  # in dir_name: {"settings": ..., "episodes": {"<seed>": "agent" or "random"}}
POLICIES_MAX_BYTES = 1 << 24  # ~500,000 episodes' entries


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
    params = rs.standard_cauchy(controller.num_params(z_size + h_size)) * s
    ((weight, bias),) = controller.layers(params, z_size + h_size)
    w_z = weight[:z_size]  # h = 0, so W's h rows never contribute

    def act():
        return controller.env_action(np.tanh(rs.randn(z_size) @ w_z + bias))

    return act


def is_complete(path, frames, rewards=False):
    """Whether `path` is an episode file of `frames` frames (with `rewards`: also its reward and
    done arrays); reads only the array headers."""
    try:
        return (array_header(path, "obs") == ((frames, *FRAME_SHAPE), np.uint8)
                and array_header(path, "action") == ((frames, 3), np.float16)
                and (not rewards or (array_header(path, "reward") == ((frames,), np.float32)
                                     and array_header(path, "done") == ((frames,), np.bool_))))
    except UserError:
        return False


def ended(info):
    """Whether a step would have ended the episode: Gymnasium's CarRacing sets info["lap_finished"]
    exactly when it terminates (True: every tile visited; False: off the playfield)."""
    return "lap_finished" in info


class RewardRecorder:
    """An env that writes its episode's step t reward and done into `reward[t]` and `done[t]`
    (one episode's rows of the recording arrays); everything else goes to the env itself."""

    def __init__(self, env, reward, done):
        object.__setattr__(self, "_parts", (env, reward, done))
        object.__setattr__(self, "_t", 0)

    def reset(self):
        object.__setattr__(self, "_t", 0)
        return self._parts[0].reset()

    def step(self, action):
        env, reward, done = self._parts
        obs, r, d, info = env.step(action)
        reward[self._t], done[self._t] = r, ended(info)
        object.__setattr__(self, "_t", self._t + 1)
        return obs, r, d, info

    def __getattr__(self, name):
        return getattr(self._parts[0], name)

    def __setattr__(self, name, value):  # e.g. the rollout's env.np_random = track generator
        setattr(self._parts[0], name, value)


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
            frames, finished = mpi.comm.recv(source=status.Get_source(), tag=PROGRESS_TAG)  # our ranks' own numbers
            self.bar.update(frames)
            self.finished += finished
            got = True
        return got


def record(envs, seeds, max_frames, progress):
    """Episodes of the random policy on the tracks of `seeds`, one per env, stepped in lockstep:
    [(obs, action, reward, done) arrays of max_frames frames]. Each episode depends on its seed only."""
    acts = [random_controller(np.random.RandomState(seed)) for seed in seeds]
    obs = []
    for env, seed in zip(envs, seeds):
        env.seed(seed)
        obs.append(env.reset())
    recording_obs = np.empty((len(seeds), max_frames, *FRAME_SHAPE), np.uint8)
    recording_action = np.empty((len(seeds), max_frames, 3), np.float16)
    recording_reward, recording_done = np.empty((len(seeds), max_frames), np.float32), np.empty((len(seeds), max_frames), bool)
    for frame in range(max_frames):
        for k, (env, act) in enumerate(zip(envs, acts)):
            recording_obs[k, frame] = obs[k]
            action = act()
            recording_action[k, frame] = action
            obs[k], reward, done, info = env.step(action)  # done is always False with full_episode=True
            recording_reward[k, frame], recording_done[k, frame] = reward, ended(info)
        progress.add(len(seeds))
    return list(zip(recording_obs, recording_action, recording_reward, recording_done))


def drives(index, share):
    """Whether the agent drives episode `index` at --agent_share `share` (spread evenly)."""
    return math.floor((index + 1) * share) > math.floor(index * share)


def record_agent(model, envs, seeds, max_frames, noise, progress):
    """Episodes of the agent `model` on the tracks of `seeds`, one per env, in one lockstep batch:
    [(obs, action, reward, done) arrays of max_frames frames]; the actions are the ones taken (with `noise`)."""
    from agent.rollout import simulate_batch  # torch is loaded only when an agent drives

    recording_obs = np.empty((len(seeds), max_frames, *FRAME_SHAPE), np.uint8)
    recording_action = np.empty((len(seeds), max_frames, 3), np.float16)
    recording_reward, recording_done = np.empty((len(seeds), max_frames), np.float32), np.empty((len(seeds), max_frames), bool)
    # the rollout gives env k the k-th episode (one each), so env k's rewards are episode k's
    recorders = [RewardRecorder(env, reward, done) for env, reward, done in zip(envs, recording_reward, recording_done)]
    streams = [np.random.default_rng((seed, 0, 1)) for seed in seeds]

    def on_step(job, episode, t, obs, action):
        if noise > 0:
            action = np.clip(action + streams[job].normal(0.0, noise, 3), controller.ACTION_LOW, controller.ACTION_HIGH)
        recording_obs[job, t], recording_action[job, t] = obs, action
        progress.add(1)
        return action

    simulate_batch(model, recorders, [model.model_params] * len(seeds), seeds, train_mode=True,
                   max_len=max_frames, on_step=on_step)
    return list(zip(recording_obs, recording_action, recording_reward, recording_done))


def load_agent(cfg, model_cfg, env_cfg):
    """The agent of --controller with its V and M (one-line errors for missing or foreign files)."""
    from model import make_model
    from plumbing.torch_setup import set_torch_for_acting

    set_torch_for_acting(model_cfg.envs_per_worker)
    model = make_model(cfg=dataclasses.replace(model_cfg, max_episode_length=cfg.max_frames), env_cfg=env_cfg)
    model.load_model(cfg.controller)
    return model


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def policy_settings(cfg, model_cfg):
    """What decides the policy of the episodes: none but the seed for the random policy."""
    if not cfg.controller:
        return {"controller": ""}
    if not os.path.isfile(cfg.controller):
        raise UserError(f"--controller {cfg.controller}: no such file")
    model_cfg.check_weight_files()
    return {"controller": _sha256(cfg.controller), "vae_path": _sha256(model_cfg.vae_path),
            "rnn_path": _sha256(model_cfg.rnn_path), "exp_mode": model_cfg.exp_mode,
            "controller_hidden": model_cfg.controller_hidden, "agent_share": cfg.agent_share,
            "action_noise": cfg.action_noise, "envs_per_worker": model_cfg.envs_per_worker, "ranks": mpi.size}


def recorded_policies(dir_name, settings):
    """{seed: policy} of the episodes `dir_name` holds, after checking they were recorded with
    `settings`; a folder of episodes without POLICIES holds the random policy's (older runs)."""
    path = os.path.join(dir_name, POLICIES)
    if os.path.exists(path):
        data = json_data.read(path, "a policies file of extract.py", POLICIES_MAX_BYTES, max_depth=3)
        if not (isinstance(data, dict) and isinstance(data.get("settings"), dict)
                and all(v is None or isinstance(v, (str, int, float, bool)) for v in data["settings"].values())
                and isinstance(data.get("episodes"), dict)
                and all(v in ("agent", "random") for v in data["episodes"].values())):
            raise UserError(f"{path}: not a policies file of extract.py")
        old, episodes = data["settings"], data["episodes"]
    elif os.path.isdir(dir_name) and any(n.endswith(".npz") for n in os.listdir(dir_name)):
        old, episodes = {"controller": ""}, {}
    else:
        return {}
    def describe(key, value):
        if value in ("", None):
            return "none"
        return f"a file of sha256 {str(value)[:12]}..." if key in ("controller", "vae_path", "rnn_path") else repr(value)

    for key in {**old, **settings}:  # the controller first
        if old.get(key) != settings.get(key):
            raise UserError(f"{path}: {dir_name}/ was recorded with other settings (--{key}: "
                            f"{describe(key, old.get(key))} there, {describe(key, settings.get(key))} now); "
                            "use another --dir_name")
    return episodes


def _groups(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def _save_all(paths, episodes, rewards):
    for path, (obs, action, reward, done) in zip(paths, episodes):
        atomic.save_npz(path, obs=obs, action=action, **(dict(reward=reward, done=done) if rewards else {}))


def write_policies(cfg, settings, episodes):
    """With --controller, rank 0 records the policy of every episode of the run (all ranks')
    before any is recorded (a folder of the random policy alone gets no file, as the original's)."""
    if not cfg.controller:
        return
    if mpi.rank == 0:
        run = {str(episode_seed(cfg.seed, i)): "agent" if drives(i, cfg.agent_share) else "random"
               for i in range(mpi.size * cfg.max_trials)}
        atomic.save_json(os.path.join(cfg.dir_name, POLICIES), {"settings": settings, "episodes": {**episodes, **run}},
                         indent=1)
    mpi.comm.Barrier()


def main():
    env_cfg, cfg, model_cfg = parse(EnvConfig, ExtractConfig, ModelConfig, description=__doc__.split("\n\n")[0])
    if cfg.agent_share > 1:
        raise UserError(f"--agent_share {cfg.agent_share}: must be at most 1")
    atomic.check_writable(cfg.dir_name)
    settings = policy_settings(cfg, model_cfg)
    write_policies(cfg, settings, recorded_policies(cfg.dir_name, settings))

    # This rank's episodes; complete files from an earlier run are skipped (an agent episode's
    # whole group is recorded again, so that its batch is the same).
    first = mpi.rank * cfg.max_trials
    share = cfg.agent_share if cfg.controller else 0.0
    seeds = [episode_seed(cfg.seed, i) for i in range(first, first + cfg.max_trials)]
    paths = [os.path.join(cfg.dir_name, f"{s}.npz") for s in seeds]
    agent = [drives(i, share) for i in range(first, first + cfg.max_trials)]
    todo = [(s, p) for s, p, a in zip(seeds, paths, agent) if not a and not is_complete(p, cfg.max_frames, cfg.record_rewards)]
    groups = [batch for batch in _groups([(s, p) for s, p, a in zip(seeds, paths, agent) if a],
                                         model_cfg.envs_per_worker)
              if not all(is_complete(p, cfg.max_frames, cfg.record_rewards) for _, p in batch)]
    recording = len(todo) + sum(map(len, groups))
    counts = np.array([recording, cfg.max_trials - recording])
    totals = np.zeros_like(counts)
    mpi.wait(mpi.comm.Iallreduce(counts, totals))
    progress = Progress(total=totals.sum() * cfg.max_frames, initial=totals[1] * cfg.max_frames)

    envs = [env_from_config(env_cfg, full_episode=True) for _ in range(min(model_cfg.envs_per_worker, max(recording, 1)))]
    model = load_agent(cfg, model_cfg, env_cfg) if groups else None
    with ThreadPoolExecutor(max_workers=1) as saver:  # compress and write while the next episodes run
        saving = None
        for batch in _groups(todo, len(envs)) + groups:
            seeds_of_batch = [seed for seed, _ in batch]
            episodes = (record_agent(model, envs, seeds_of_batch, cfg.max_frames, cfg.action_noise, progress)
                        if batch in groups else record(envs[:len(batch)], seeds_of_batch, cfg.max_frames, progress))
            if saving is not None:
                saving.result()
            saving = saver.submit(_save_all, [path for _, path in batch], episodes, cfg.record_rewards)
        if saving is not None:
            saving.result()
    for env in envs:
        env.close()
    progress.close()
    if mpi.rank == 0:
        policies = f" (their policies in {POLICIES})" if cfg.controller else ""
        print(f"{totals[0]} episodes recorded, {totals[1]} already complete, in {cfg.dir_name}/{policies}")


if __name__ == "__main__":
    run(main)
