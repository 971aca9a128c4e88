"""files/run_pack.py: a tiny run packed after generation 2 and unpacked elsewhere continues with
the packed run's mean, step size, covariance and paths (to 1e-12), its covariance's fresh
eigendecomposition consistent with it, and the same logs; a foreign or altered pack is one line."""
import json
import shutil

import numpy as np
import pytest
from conftest import REPO, run_script, write_random_agent

TINY = ["--config", "smoke", "--max_episode_length", "15"]  # cma, 2 workers x 2 trials, 867 parameters
BASE = "carracing.cma.1.4"


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    d = write_random_agent(tmp_path_factory.mktemp("pack"), "run/vae.json", "run/rnn.json")
    weights = ["--vae_path", "vae.json", "--rnn_path", "rnn.json"]
    run_script("train.py", *TINY, *weights, "--max_generations", "2", "--log_dir", "log", cwd=d / "run", mpi=3)
    out = run_script("files/run_pack.py", "pack", "log/" + BASE, d / "pack", *weights, "--max_generations", "3",
                     cwd=d / "run").stdout
    assert "after generation 2" in out
    return d


def load(folder):
    import config
    from config import EnvConfig, ModelConfig, TrainConfig
    from train import load_checkpoint

    cfg, model_cfg, env_cfg = config.parse(TrainConfig, ModelConfig, EnvConfig, argv=[*TINY, "--log_dir", str(folder)])
    return load_checkpoint(cfg, model_cfg, env_cfg, 867)[0]["es"].es


def test_an_unpacked_run_continues_from_the_packed_state(packed):
    out = run_script("files/run_pack.py", "unpack", packed / "pack", packed / "clone", cwd=packed).stdout
    assert "--resume --max_generations 3" in out and "vae.json" in out
    whole, clone = load(packed / "run" / "log"), load(packed / "clone" / "log")
    for a, b in [(whole.mean, clone.mean), (whole.sm.C, clone.sm.C), (whole.pc, clone.pc),
                 (whole.adapt_sigma.ps, clone.adapt_sigma.ps), ([whole.sigma], [clone.sigma])]:
        assert np.allclose(a, b, rtol=0, atol=1e-12)
    sampled = (clone.sm.B * clone.sm.D ** 2) @ clone.sm.B.T  # what the clone samples from
    assert np.allclose(sampled, clone.sm.C, rtol=0, atol=1e-12)
    assert (packed / "pack" / (BASE + ".checkpoint.pt")).stat().st_size < 5e6
    for suffix in (".json", ".hist.json", ".log.json", ".best.json", ".hist_best.json"):
        assert (packed / "clone" / "log" / (BASE + suffix)).read_bytes() == \
            (packed / "run" / "log" / (BASE + suffix)).read_bytes()
    cmd = out.strip().splitlines()[-1].split("&&", 1)[1].split()[2:]  # train.py's arguments as printed
    cmd = [a.strip("'") for a in cmd]
    run_script("train.py", *cmd, "--max_episode_length", "15", cwd=packed / "clone", mpi=3)
    rows = json.loads((packed / "clone" / "log" / (BASE + ".hist.json")).read_text())
    assert [r[0] for r in rows] == [1, 2, 3]


def test_a_pack_from_a_foreign_or_altered_file_is_one_line(packed, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(packed / "pack", bad)
    (bad / "pack.json").write_text('{"format": "something else"}')
    proc = run_script("files/run_pack.py", "unpack", bad, tmp_path / "x", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().endswith("pack.json: not a run pack of this version")
    meta = json.loads((packed / "pack" / "pack.json").read_text())
    meta["files"]["rnn_path"]["sha256"] = "0" * 64
    (bad / "pack.json").write_text(json.dumps(meta))
    proc = run_script("files/run_pack.py", "unpack", bad, tmp_path / "x", check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "sha256" in proc.stderr
    (bad / "pack.json").write_text("[" * 100 + "]" * 100)
    proc = run_script("files/run_pack.py", "unpack", bad, tmp_path / "x", check=False)
    assert proc.returncode == 2 and "nested" in proc.stderr and "Traceback" not in proc.stderr
