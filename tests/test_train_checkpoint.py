"""train.py's checkpoint is data: crafted checkpoints of every kind an attacker tried end
`train.py --resume` with one line naming the file and exit 2, within seconds, with nothing run,
read or written; an honest one resumes (test_train.py kills runs at several instants)."""
import io
import json
import os
import pickle
import time
import zipfile

import numpy as np
import pytest
import torch
from conftest import run_script, write_random_agent

from files import train_checkpoint
from plumbing.cli import UserError

TINY = ["--config", "smoke", "--max_episode_length", "20"]  # 2 workers x 2 trials, cma
BASE = "carracing.cma.1.4"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A folder with random V and M and a 1-generation run's logs and checkpoint."""
    d = write_random_agent(tmp_path_factory.mktemp("ckpt"))
    run_script("train.py", *TINY, "--max_generations", "1", "--log_dir", "log", cwd=d, mpi=3)
    return d


def entries(path):
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i.filename) for i in z.infolist()}


def write_zip(path, files, deflated=()):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data, zipfile.ZIP_DEFLATED if name in deflated else zipfile.ZIP_STORED)
    path.write_bytes(buf.getvalue())


def npy(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def resume_refuses(run, tmp_path, craft, expect):
    """Copy the run's log folder, let `craft(checkpoint path, its entries)` change the checkpoint,
    resume: one line naming the file and `expect`, exit 2, no file in the folder changed or added."""
    folder = tmp_path / "log"
    folder.mkdir()
    for f in (run / "log").iterdir():
        if f.is_file():
            (folder / f.name).write_bytes(f.read_bytes())
    path = folder / (BASE + ".checkpoint.pt")
    craft(path, entries(path))
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    start = time.monotonic()
    proc = run_script("train.py", *TINY, "--max_generations", "2", "--log_dir", folder, "--resume",
                      cwd=run, check=False, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"train.py: error: {path}: ") and expect in lines[0], lines[0]
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before
    assert sorted(os.listdir(tmp_path)) == ["log"]
    assert time.monotonic() - start < 30


def replace(**changes):
    def craft(path, files):
        files.update({k.replace("__", "/").replace("_DOT_", "."): v for k, v in changes.items()})
        write_zip(path, files)
    return craft


def with_header(**fields):
    def craft(path, files):
        header = json.loads(files["header.json"])
        header.update(fields)
        files["header.json"] = json.dumps(header)
        write_zip(path, files)
    return craft


def with_settings(**settings):
    def craft(path, files):
        header = json.loads(files["header.json"])
        header["settings"].update(settings)
        files["header.json"] = json.dumps(header)
        write_zip(path, files)
    return craft


def with_field(field, array):
    def craft(path, files):
        files[f"optimizer/{field}.npy"] = npy(array)
        write_zip(path, files)
    return craft


class _Marker:
    def __reduce__(self):
        return os.system, ("touch marker",)


def old_format(path, files):
    """Format 1: a torch file whose optimizer travels as pickled bytes (here, a payload)."""
    buf = io.BytesIO()
    torch.save({"kind": "train.py", "settings": {}, "es": pickle.dumps(_Marker())}, buf)
    path.write_bytes(buf.getvalue())


def bomb(path, files):
    """state.json padded with 64 MiB of spaces, deflated ~1000:1."""
    files["state.json"] = files["state.json"] + b" " * (1 << 26)
    write_zip(path, files, deflated=("state.json",))


def truncated(path, files):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def many_entries(path, files):
    write_zip(path, {f"optimizer/x{i}.npy": b"" for i in range(5000)})


# One crafted checkpoint per class goes through the real command; the other variants through
# the same reader in this process (train.load_checkpoint, what train.py calls), to keep the suite short.
CASES = {
    "pickle: the older format's pickled optimizer": (old_format, "older train.py (format 1", True),
    "pickle: an object array among the optimizer's": (with_field("es.mean", np.array([_Marker()] * 12, dtype=object)),
                                                      "es.mean.npy is not a plain array", False),
    "pickle: state.json replaced by a pickle": (replace(state_DOT_json=pickle.dumps(_Marker())),
                                                "not a checkpoint of train.py (state.json) (", False),
    "foreign option: a file name in the settings": (with_settings(signals_filename="/etc/passwd"),
                                                    "signals_filename '/etc/passwd' there, absent now", True),
    "foreign option: an entry for pycma's options": (replace(optimizer__es_DOT_opts_DOT_npy=npy(np.zeros(1))),
                                                     "an entry 'optimizer/es.opts.npy' train.py never writes", False),
    "huge population in the settings": (with_settings(num_worker_trial=10**6), "num_worker_trial 1000000 there, 2 now",
                                        False),
    "huge population in a field": (with_field("es.pop_sorted", np.zeros((10**5, 867))), "more than the", True),
    "huge history claimed by the header": (with_header(t=10**9), "header field t is 1000000000", False),
    "bomb: a deflated entry": (bomb, "a compressed entry 'state.json'", True),
    "bomb: thousands of entries": (many_entries, "5000 entries", False),
    "non-finite: a NaN mean": (with_field("es.mean", np.full(867, np.nan)), "es.mean holds values that are not finite",
                               True),
    "non-finite: NaN in state.json": (replace(state_DOT_json=b'{"t": NaN}'), "non-finite number NaN", False),
    "deep nesting in state.json": (replace(state_DOT_json=b"[" * 50000 + b"]" * 50000), "(state.json) (nested too deeply)", False),
    "wrong shape: a covariance of another size": (with_field("es.sm.C", np.eye(866)), "es.sm.C has shape (866, 866)",
                                                  True),
    "wrong type: the step size as a string": (with_field("es.sigma", np.array("0.1")),
                                              "es.sigma is <U3, expected float64", False),
    "truncated file": (truncated, "not a checkpoint of train.py", True),
    "another version": (with_header(version=3), "checkpoint format 3, this train.py reads 2", False),
}


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[2]])
def test_a_crafted_checkpoint_ends_resume_in_one_line_and_changes_nothing(run, tmp_path, name):
    craft, expect, _ = CASES[name]
    resume_refuses(run, tmp_path, craft, expect)
    assert not (run / "marker").exists()


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if not c[2]])
def test_a_crafted_checkpoint_is_refused_by_the_reader_train_py_calls(run, tmp_path, name):
    import config
    from config import EnvConfig, ModelConfig, TrainConfig
    from train import load_checkpoint

    craft, expect, _ = CASES[name]
    folder = tmp_path / "log"
    folder.mkdir()
    path = folder / (BASE + ".checkpoint.pt")
    path.write_bytes((run / "log" / path.name).read_bytes())
    craft(path, entries(path))
    cfg, model_cfg, env_cfg = config.parse(TrainConfig, ModelConfig, EnvConfig, argv=[*TINY, "--log_dir", str(folder)])
    with pytest.raises(UserError) as refusal:
        load_checkpoint(cfg, model_cfg, env_cfg, 867)
    assert str(refusal.value).startswith(f"{path}: ") and expect in str(refusal.value)
    assert "\n" not in str(refusal.value) and sorted(os.listdir(folder)) == [path.name]


def test_the_checkpoint_holds_no_pickle_and_resumes(run, tmp_path):
    """Every entry is JSON or a .npy that numpy reads without pickle; the run resumes from it."""
    path = run / "log" / (BASE + ".checkpoint.pt")
    for name, data in entries(path).items():
        if name.endswith(".npy"):
            assert np.load(io.BytesIO(data), allow_pickle=False).dtype.kind in "fibu", name
        else:
            json.loads(data)
    assert json.loads(entries(path)["header.json"])["version"] == train_checkpoint.VERSION


def test_a_refusal_under_mpiexec_is_read_by_rank_0_and_said_once(run, tmp_path):
    """Launched with mpiexec by hand, rank 0 alone reads the checkpoint and every rank stops."""
    folder = tmp_path / "log"
    folder.mkdir()
    (folder / (BASE + ".checkpoint.pt")).write_bytes(b"PK\x05\x06" + b"\0" * 18)
    proc = run_script("train.py", *TINY, "--log_dir", folder, "--resume", cwd=run, mpi=3, check=False, timeout=60)
    assert proc.returncode != 0 and "not a checkpoint of train.py" in proc.stderr
    assert "Traceback" not in proc.stderr
