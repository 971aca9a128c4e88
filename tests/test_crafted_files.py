"""Every file a user hands the project is data: crafted weight JSON, controllers, initial_z,
pipeline.json and episode files end the real command with one line naming the file, exit 2,
no traceback and nothing written, within seconds. (train.py's checkpoint: test_train_checkpoint.py.)"""
import io
import os
import time
import zipfile

import numpy as np
import pytest
from conftest import REPO, run_script

SHIPPED_VAE, SHIPPED_RNN = str(REPO / "vae/vae.json"), str(REPO / "rnn/rnn.json")


def npy(shape, dtype, payload=b""):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, dict(descr=np.dtype(dtype).str, fortran_order=False, shape=shape))
    return buf.getvalue() + payload


def npz(path, entries, deflated=False):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if deflated else zipfile.ZIP_STORED) as z:
        for name, data in entries.items():
            z.writestr(name + ".npy", data)


def object_array_npz(path):
    buf = io.BytesIO()
    np.save(buf, np.array([os.system] * 2, dtype=object), allow_pickle=True)
    npz(path, {"obs": buf.getvalue()})


def controller(text):
    return lambda path: path.write_text(text)


PARAMS = ", ".join(["0.1"] * 866)
# name: (the command's arguments, with FILE for the crafted file; what writes it; what the line says)
CASES = {
    "controller: NaN": (["model.py", "norender", "FILE", "0"], controller(f"[[NaN, {PARAMS}], 1]"),
                        "non-finite number NaN"),
    "controller: an integer past float64": (["model.py", "norender", "FILE", "0"],
                                            controller(f"[[{10**400}, {PARAMS}], 1]"), "not a rectangular array"),
    "controller: wrong shape": (["model.py", "norender", "FILE", "0"], controller("[[[1, 2], [3, 4]], 1]"),
                                "not a rectangular array|parameters, but exp_mode"),
    "controller: size bomb": (["model.py", "norender", "FILE", "0"],
                              lambda p: p.write_bytes(b"[[" + b" " * (1 << 24) + b"0]]"), "larger than 16777216 bytes"),
    "vae.json: a pickle": (["model.py", "norender", str(REPO / "log/carracing.cma.4.16.best.json"), "0",
                            "--vae_path", "FILE"], lambda p: p.write_bytes(b"\x80\x04\x95cos\nsystem\n"), "not a weight"),
    "vae.json: deep nesting": (["model.py", "norender", str(REPO / "log/carracing.cma.4.16.best.json"), "0",
                                "--vae_path", "FILE"], controller("[" * 20 + "1" + "]" * 20), "nested deeper than 8"),
    "rnn.json: non-finite weights": (["model.py", "norender", str(REPO / "log/carracing.cma.4.16.best.json"), "0",
                                      "--rnn_path", "FILE"], controller("[[Infinity]]"), "non-finite number Infinity"),
    "initial_z.json: wrong shape": (["dream_model.py", "--initial_z_path", "FILE",
                                     str(REPO / "log/carracing.cma.4.16.best.json"), "1"],
                                    controller("[[[1, 2]], [[3, 4]]]"), "entries of 32 numbers"),
    "initial_z.json: NaN": (["dream_model.py", "--initial_z_path", "FILE",
                             str(REPO / "log/carracing.cma.4.16.best.json"), "1"], controller("[[NaN], [1]]"),
                            "non-finite number NaN"),
    "episode: an object array (pickle)": (["vae_train.py", "--config", "smoke", "--data_dir", "DIR"],
                                          object_array_npz, "obs is object"),
    "episode: a bomb (a header of 10^6 frames, deflated)": (
        ["vae_train.py", "--config", "smoke", "--data_dir", "DIR"],
        lambda p: npz(p, {"obs": npy((10**6, 64, 64, 3), np.uint8, b"\0" * 1000)}, deflated=True),
        "holds 1000000 frames, more than the 10000"),
    "episode: a header that understates its data": (
        ["series.py", "--config", "smoke", "--data_dir", "DIR", "--vae_path", SHIPPED_VAE],
        lambda p: npz(p, {"obs": npy((1, 64, 64, 3), np.uint8, b"\0" * 10**6), "action": npy((1, 3), "<f2", b"\0" * 6)}),
        "more than its header's"),
    "episode: truncated": (["vae_train.py", "--config", "smoke", "--data_dir", "DIR"],
                           lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 40), "corrupt or not an episode file"),
    "pipeline.json: a path option of another type": (
        ["pipeline.py", "--config", "smoke", "--run_dir", "DIR"],
        controller('{"config": "smoke", "stages": {"extract": {"seconds": 1, "options": {"dir_name": 5}}}}'),
        "not a pipeline state file"),
    "pipeline.json: non-finite seconds": (
        ["pipeline.py", "--config", "smoke", "--run_dir", "DIR"],
        controller('{"config": "smoke", "stages": {"extract": {"seconds": NaN, "options": {}}}}'),
        "non-finite number NaN"),
}
FILE_NAMES = {"model.py": "crafted.json", "dream_model.py": "crafted.json", "vae_train.py": "0.npz",
              "series.py": "0.npz", "pipeline.py": "pipeline.json"}


@pytest.mark.parametrize("name", CASES)
def test_a_crafted_file_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, name):
    monkeypatch.setenv("TQDM_DISABLE", "1")  # stderr then holds the error line alone, as a terminal shows it
    args, craft, expect = CASES[name]
    folder, work = tmp_path / "given", tmp_path / "work"
    folder.mkdir()
    work.mkdir()
    path = folder / FILE_NAMES[args[0]]
    craft(path)
    args = [str(path) if a == "FILE" else str(folder) if a == "DIR" else a for a in args]
    args = [args[0]] + (["--vae_path", SHIPPED_VAE, "--rnn_path", SHIPPED_RNN] if args[0] in ("model.py", "dream_model.py")
                        else []) + args[1:]
    before = sorted(os.listdir(folder))
    start = time.monotonic()
    proc = run_script(*args, cwd=work, check=False, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert str(path) in lines[0] or (str(folder) in lines[0] and path.name in lines[0]), lines[0]
    assert any(e in lines[0] for e in expect.split("|")), lines[0]
    assert os.listdir(work) == [] and sorted(os.listdir(folder)) == before
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("text, message", [
    ("[1e999]", "number 1e999 overflows float64"), ("[-Infinity]", "non-finite number -Infinity"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"), ("[[[[1]]]]", "nested deeper than 3 levels"),
    ("[1, 2", "Expecting"), ("\xff", "not x"),
])
def test_json_data_refuses_what_json_alone_accepts_or_chokes_on(text, message):
    from files import json_data
    from plumbing.cli import UserError

    with pytest.raises(UserError, match="^f.json: not x") as e:
        json_data.loads(text.encode("latin-1"), "f.json", "x", max_depth=3)
    assert message in str(e.value)
    assert json_data.loads(b'{"a": [1, 2.5, null]}', "f.json", "x", max_depth=3) == {"a": [1, 2.5, None]}
