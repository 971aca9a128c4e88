"""Episode files, `record/<seed>.npz` as extract.py writes them: listing, checking, loading.

An episode holds `obs` uint8 (T, 64, 64, 3) and `action` float16 (T, 3); one that extract.py
wrote with --record_rewards also `reward` float32 (T,) and `done` bool (T,) (`rewards_of`).
Readers name the file and the problem in a one-line cli.UserError for anything else, and read
it as data (files/npz_data.py: no pickle, sizes bounded before anything is decompressed).
"""
import os

import numpy as np

from files import npz_data
from plumbing.cli import UserError

FRAME_SHAPE = (64, 64, 3)
KIND = "an episode file"
MAX_FRAMES = 10_000  # ten times CarRacing's longest episode: bounds what one file may make us allocate
DTYPES = {"obs": (np.uint8,), "action": (np.float16, np.float32, np.float64),
          "reward": (np.float16, np.float32, np.float64), "done": (np.bool_,)}
REWARD_KEYS = ("reward", "done")  # extract.py --record_rewards


def list_episodes(data_dir, max_files):
    """The first `max_files` episode files of `data_dir`, sorted by name as the original."""
    if not os.path.isdir(data_dir):
        raise UserError(f"{data_dir}: no such folder (record episodes with extract.py first)")
    names = sorted(n for n in os.listdir(data_dir) if n.endswith(".npz"))[:max_files]
    if not names:
        raise UserError(f"{data_dir}: no episode .npz files in this folder")
    return [os.path.join(data_dir, n) for n in names]


def array_header(path, name):
    """(shape, dtype) of array `name` in the npz file `path`, from its header alone (no
    decompression); a one-line UserError for a missing array or a damaged file."""
    return npz_data.header(path, name, KIND)


def episode_length(path):
    """Frames in episode `path`, from the npz header only; checks the file is an episode: an
    `obs` array of uint8 frames (T, 64, 64, 3)."""
    shape, dtype = array_header(path, "obs")
    _check_obs(path, shape, dtype)
    return shape[0]


def _check_obs(path, shape, dtype):
    if len(shape) != 4 or tuple(shape[1:]) != FRAME_SHAPE or shape[0] < 1 or dtype != np.uint8:
        raise UserError(f"{path}: obs is {dtype} {tuple(shape)}, expected uint8 (T, 64, 64, 3)")
    if shape[0] > MAX_FRAMES:
        raise UserError(f"{path}: obs holds {shape[0]} frames, more than the {MAX_FRAMES} an episode may have")


def load_episode(path, keys=("obs",), optional=()):
    """The arrays `keys` of episode `path`, and those of `optional` that the file holds (obs
    checked as in `episode_length`, every array's size bounded before it is read, actions
    finite and as many as the frames)."""
    if "obs" in keys:
        episode_length(path)
    arrays = npz_data.load(path, KIND, {k: DTYPES[k] for k in keys}, MAX_FRAMES * int(np.prod(FRAME_SHAPE)),
                           optional={k: DTYPES[k] for k in optional})
    if "action" in arrays:
        action = arrays["action"]
        frames = len(arrays["obs"]) if "obs" in arrays else len(action)
        if action.shape != (frames, 3):
            raise UserError(f"{path}: action has shape {action.shape}, expected ({frames}, 3) for its {frames} frames")
        if not np.isfinite(action).all():
            raise UserError(f"{path}: action holds values that are not finite")
    return arrays


def rewards_of(path, arrays, frames):
    """(reward float32 (frames,), done bool (frames,)) of the arrays loaded from episode `path`
    (`load_episode(path, ..., optional=REWARD_KEYS)`), or None when the file has neither (the
    original's files and extract.py's without --record_rewards); a one-line UserError when it
    has one without the other or either has another shape or dtype."""
    if not any(k in arrays for k in REWARD_KEYS):
        return None
    reward, done = arrays.get("reward"), arrays.get("done")
    if reward is None or done is None:
        raise UserError(f"{path}: has {', '.join(k for k in REWARD_KEYS if k in arrays)} but not both reward and done")
    if reward.shape != (frames,) or done.shape != (frames,) or not np.issubdtype(reward.dtype, np.floating) \
            or done.dtype != np.bool_:
        raise UserError(f"{path}: reward is {reward.dtype} {reward.shape} and done {done.dtype} {done.shape}, "
                        f"expected float ({frames},) and bool ({frames},)")
    if not np.isfinite(reward).all():
        raise UserError(f"{path}: reward holds values that are not finite")
    return reward.astype(np.float32), done
