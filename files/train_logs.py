"""The five logs of train.py, in the original's formats: their names, layouts, writing and reading.

`<log_dir>/<env>.<optimizer>.<num_episode>.<population>` + one suffix per log:
  .json           [current_param rounded to 4 d.p.]                 every generation
  .hist.json      rows [gen, seconds, mean, min, max, std, rms_stdev, mean_steps, max_steps]
  .log.json       rows [gen, eval_reward, params]                    every evaluation
  .best.json      [params of the best evaluation, its reward]
  .hist_best.json rows [gen, seconds, "improvement", d, "curr", r, "prev", p, "best", b]
Each is written with the json.dump options the original used for it, so its plotting notebook
and ours read either run's logs.
"""
import os

from files import atomic, json_data
from plumbing.cli import UserError

MAX_BYTES = 1 << 26  # 64 MiB: .log.json of 2,000 evaluations of 867 parameters is ~35 MB

LAYOUTS = {".json": dict(sort_keys=True, indent=2, separators=(",", ": ")),
           ".hist.json": dict(sort_keys=False, indent=0, separators=(",", ":")),
           ".hist_best.json": dict(sort_keys=False, indent=0, separators=(",", ":")),
           ".best.json": dict(sort_keys=True, indent=0, separators=(",", ": ")),
           ".log.json": dict()}


CHECKPOINT_SUFFIX = ".checkpoint.pt"  # <base>.checkpoint.pt: train.py's checkpoint, beside the logs


def log_base(train_cfg, env_cfg):
    """The logs' common path: `<log_dir>/<env>.<optimizer>.<num_episode>.<population>`."""
    population = train_cfg.num_worker * train_cfg.num_worker_trial
    return os.path.join(train_cfg.log_dir, f"{env_cfg.env_name}.{train_cfg.optimizer}.{train_cfg.num_episode}.{population}")


def write(base, suffix, content):
    """Atomically write log `suffix` of run `base` in the original's layout."""
    atomic.save_json(base + suffix, content, **LAYOUTS[suffix])


def read_rows(base, suffix, required=True):
    """The rows of log `suffix` (.hist.json, .hist_best.json, .log.json); [] when absent and not
    `required`; a one-line UserError for a missing or foreign file."""
    path = base + suffix
    if not os.path.exists(path):
        if required:
            raise UserError(f"{path}: no such file (give the log base, e.g. log/carracing.cma.16.64)")
        return []
    rows = json_data.read(path, "a train.py log", MAX_BYTES)
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) >= 3 for r in rows):
        raise UserError(f"{path}: not a train.py log (expected a list of rows)")
    return rows


def read_best(base):
    """(params, reward) of `<base>.best.json`, or None when there is none yet."""
    path = base + ".best.json"
    if not os.path.exists(path):
        return None
    data = json_data.read(path, "a train.py best.json", MAX_BYTES)
    if not (isinstance(data, list) and len(data) == 2 and isinstance(data[0], list)
            and all(isinstance(x, (int, float)) for x in data[0]) and isinstance(data[1], (int, float))):
        raise UserError(f"{path}: not a train.py best.json (expected [params, reward])")
    return data
