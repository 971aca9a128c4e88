"""A train.py run as a small folder that can be committed and continued on a fresh clone.

    python files/run_pack.py pack runs/x/log/carracing.cma.4.16 packs/x --vae_path runs/x/vae.json --rnn_path runs/x/rnn.json
    python files/run_pack.py unpack packs/x runs/x      # on a fresh clone: prints the train.py command to continue

A pack holds what the run's later generations need and nothing that can run code:
  pack.json                 the run's settings, its log base's name, and V and M: each by sha256,
                            either a file of this repository (`at`) or a copy in the pack (`packed`)
  <base>.checkpoint.pt      train.py's checkpoint, compact (files/train_checkpoint.py: CMA's
                            covariance as its upper triangle; ~4.5 MB at 867 parameters)
  <base>.json, .hist.json, ... the five logs as they were (train.py rewrites them on resume)
`unpack` writes the run folder (log/, V and M), checking every hash, and prints the command:
train.py --resume then continues from the pack, its mean, step size, covariance and paths
those of the packed run (its sampling: see train_checkpoint.save's `compact`).
"""
import argparse
import hashlib
import os
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script: the root

from files import atomic, json_data, train_checkpoint, train_logs
from plumbing.cli import UserError, run

FORMAT, VERSION = "train.py run pack", 1
PACK_JSON = "pack.json"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = ("vae_path", "rnn_path")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tracked_copy(path):
    """The repository path of a tracked file with `path`'s bytes, or None."""
    digest = sha256(path)
    names = subprocess.run(["git", "-C", REPO, "ls-files", "vae", "rnn", "*.json"], capture_output=True, text=True).stdout
    for name in names.split():
        full = os.path.join(REPO, name)
        if os.path.isfile(full) and os.path.getsize(full) == os.path.getsize(path) and sha256(full) == digest:
            return name
    return None


def configs(settings):
    """train.py's TrainConfig, ModelConfig, EnvConfig and DreamConfig of checkpoint `settings`."""
    from config import DreamConfig, EnvConfig, ModelConfig, TrainConfig, preset

    parts = {TrainConfig: {}, ModelConfig: {}, EnvConfig: {}, DreamConfig: {}}
    prefixes = {"model": ModelConfig, "env": EnvConfig, "dream": DreamConfig}
    for key, value in settings.items():
        cls = prefixes.get(key.split(".", 1)[0], TrainConfig) if "." in key else TrainConfig
        parts[cls][key.split(".", 1)[-1]] = value
    try:
        return tuple(preset(cls, "paper", **fields) for cls, fields in parts.items())
    except TypeError as e:
        raise UserError(f"settings of another train.py ({e})") from None


def command(settings, log_dir, weights):
    """train.py's command line that continues a run of `settings` (every setting spelled out)."""
    flags = []
    for key, value in settings.items():
        flags += [f"--{key.split('.', 1)[-1]}", str(int(value)) if isinstance(value, bool) else str(value)]
    return ["train.py", *flags, "--vae_path", weights["vae_path"], "--rnn_path", weights["rnn_path"],
            "--log_dir", log_dir, "--resume"]


def pack(base, out, weights, max_generations=0):
    """Write the pack of the run at log base `base` (its V and M at `weights`) into folder `out`;
    `max_generations`: where the run is to stop (0: not said)."""
    from model import controller_size
    from rnn.rnn import hps_of
    from train import load_checkpoint

    path = base + train_logs.CHECKPOINT_SUFFIX
    header = train_checkpoint.read_header(path)  # the settings, to rebuild the optimizer; load_checkpoint checks the rest
    cfg, model_cfg, env_cfg, dream_cfg = configs(header["settings"])
    cfg.log_dir = os.path.dirname(base)
    if train_logs.log_base(cfg, env_cfg) != base:
        raise UserError(f"{base}: not the log base of its checkpoint's settings ({train_logs.log_base(cfg, env_cfg)})")
    num_params = controller_size(model_cfg, hps_of(weights["rnn_path"]))  # as train.py sizes it
    state, rng = load_checkpoint(cfg, model_cfg, env_cfg, num_params, dream_cfg)
    es = state.pop("es")
    name = os.path.basename(base)
    train_checkpoint.save(os.path.join(out, name + train_logs.CHECKPOINT_SUFFIX), header["settings"], es, state, rng,
                          compact=True)
    for suffix in train_logs.LAYOUTS:
        if os.path.exists(base + suffix):
            atomic.copy(base + suffix, os.path.join(out, name + suffix))
    files = {}
    for key, source in weights.items():
        at = tracked_copy(source)
        files[key] = dict(sha256=sha256(source), **({"at": at} if at else {"packed": os.path.basename(source)}))
        if not at:
            atomic.copy(source, os.path.join(out, os.path.basename(source)))
    atomic.save_json(os.path.join(out, PACK_JSON), dict(format=FORMAT, version=VERSION, base=name, t=state["t"],
                                                        max_generations=max_generations, settings=header["settings"],
                                                        files=files), indent=1)
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"packed {base} after generation {state['t']} into {out}/ ({size / 1e6:.1f} MB)")


def unpack(folder, run_dir):
    """Write the run folder of the pack in `folder` and print the command that continues it."""
    meta = json_data.read(os.path.join(folder, PACK_JSON), "a run pack", 1 << 20)
    if not (isinstance(meta, dict) and meta.get("format") == FORMAT and meta.get("version") == VERSION
            and isinstance(meta.get("base"), str) and os.path.basename(meta["base"]) == meta["base"]
            and isinstance(meta.get("settings"), dict) and isinstance(meta.get("files"), dict)
            and set(meta["files"]) == set(WEIGHTS)):
        raise UserError(f"{os.path.join(folder, PACK_JSON)}: not a run pack of this version")
    weights = {}
    for key, entry in meta["files"].items():
        source = _weight_source(folder, entry)
        if sha256(source) != entry.get("sha256"):
            raise UserError(f"{source}: its sha256 is not the packed run's {key} (checkout the commit the pack names)")
        weights[key] = "vae.json" if key == "vae_path" else "rnn.json"
        atomic.copy(source, os.path.join(run_dir, weights[key]))
    log = os.path.join(run_dir, "log")
    for name in os.listdir(folder):
        if name.startswith(meta["base"] + "."):
            atomic.copy(os.path.join(folder, name), os.path.join(log, name))
    cmd = command(meta["settings"], "log", weights)
    stop = meta.get("max_generations")
    stop = str(stop) if isinstance(stop, int) and not isinstance(stop, bool) and stop > 0 else "N"
    print(f"unpacked {folder} (generation {meta.get('t')}) into {run_dir}/; continue with:")
    print(f"  cd {shlex.quote(run_dir)} && python {shlex.quote(os.path.join(REPO, cmd[0]))} "
          + " ".join(shlex.quote(a) for a in cmd[1:]) + f" --max_generations {stop}")


def _weight_source(folder, entry):
    if isinstance(entry, dict) and isinstance(entry.get("at"), str) and ".." not in entry["at"].split("/") \
            and not os.path.isabs(entry["at"]):
        return os.path.join(REPO, entry["at"])
    if isinstance(entry, dict) and isinstance(entry.get("packed"), str) and os.path.basename(entry["packed"]) == entry["packed"]:
        return os.path.join(folder, entry["packed"])
    raise UserError(f"{os.path.join(folder, PACK_JSON)}: a weight entry that names no file of the repository or pack")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    a = sub.add_parser("pack", help="write the pack of a live or stopped train.py run")
    a.add_argument("base", help="the run's log base, e.g. runs/x/log/carracing.cma.4.16")
    a.add_argument("out", help="the pack's folder (created; its files are replaced)")
    a.add_argument("--vae_path", required=True, help="the run's V")
    a.add_argument("--rnn_path", required=True, help="the run's M")
    a.add_argument("--max_generations", type=int, default=0, help="where the run is to stop (shown by unpack)")
    b = sub.add_parser("unpack", help="write a run folder from a pack and print the command that continues it")
    b.add_argument("pack", help="the pack's folder")
    b.add_argument("run_dir", help="the run folder to write (log/, vae.json, rnn.json)")
    args = p.parse_args(argv)
    if args.verb == "pack":
        for key in WEIGHTS:
            if not os.path.isfile(getattr(args, key)):
                raise UserError(f"{getattr(args, key)}: no such file (--{key})")
        pack(args.base, args.out, {k: getattr(args, k) for k in WEIGHTS}, args.max_generations)
    else:
        unpack(args.pack, args.run_dir)


if __name__ == "__main__":
    run(main)
