"""Episode files, `record/<seed>.npz` as extract.py writes them: listing, checking, loading.

An episode holds `obs` uint8 (T, 64, 64, 3) and `action` float16 (T, 3); one that extract.py
wrote with --record_rewards also `reward` float32 (T,) and `done` bool (T,) (`rewards_of`).
Readers name the file and the problem in a one-line cli.UserError for anything else.
"""
import os
import zipfile
import zlib

import numpy as np

from plumbing.cli import UserError

FRAME_SHAPE = (64, 64, 3)
REWARD_KEYS = ("reward", "done")  # extract.py --record_rewards
NOT_NPZ = "not an .npz archive"


def _not_an_episode(path, reason):
    return UserError(f"{path}: corrupt or not an episode file ({reason})")


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
    try:
        with zipfile.ZipFile(path) as z, z.open(f"{name}.npy") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
    except KeyError:
        raise UserError(f"{path}: no '{name}' array (not an episode file)") from None
    except zipfile.BadZipFile:
        raise _not_an_episode(path, NOT_NPZ) from None
    except (OSError, ValueError, EOFError, zlib.error) as e:
        raise _not_an_episode(path, f"{type(e).__name__}: {e}") from None
    return shape, dtype


def episode_length(path):
    """Frames in episode `path`, from the npz header only; checks the file is an episode: an
    `obs` array of uint8 frames (T, 64, 64, 3)."""
    shape, dtype = array_header(path, "obs")
    _check_obs(path, shape, dtype)
    return shape[0]


def _check_obs(path, shape, dtype):
    if len(shape) != 4 or tuple(shape[1:]) != FRAME_SHAPE or shape[0] < 1 or dtype != np.uint8:
        raise UserError(f"{path}: obs is {dtype} {tuple(shape)}, expected uint8 (T, 64, 64, 3)")


def load_episode(path, keys=("obs",), optional=()):
    """The arrays `keys` of episode `path` (obs checked as in `episode_length`), and those of
    `optional` that the file holds."""
    if os.path.isfile(path) and not zipfile.is_zipfile(path):  # np.load would try it as a pickle
        raise _not_an_episode(path, NOT_NPZ)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in (*keys, *(k for k in optional if k in data.files))}
    except KeyError as e:
        raise UserError(f"{path}: no {e} array (not an episode file)") from None
    except zipfile.BadZipFile:
        raise _not_an_episode(path, NOT_NPZ) from None
    except Exception as e:  # zlib and format errors of a damaged file
        raise _not_an_episode(path, f"{type(e).__name__}: {e}") from None
    if "obs" in arrays:
        _check_obs(path, arrays["obs"].shape, arrays["obs"].dtype)
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
    return reward.astype(np.float32), done
