"""The V probe (vprobe.py, report.py): V's error on the agent's frames beside the data policy's,
and simulate_batch's per-step hook it records with."""
import json

import numpy as np
import pytest
import torch
from conftest import REPO, run_script

from agent.rollout import simulate_batch
from config import ModelConfig
from env import make_env
from model import Model
from reports import vprobe
from vae.vae import ConvVAE

SHIPPED_BEST = REPO / "log" / "carracing.cma.4.16.best.json"


def test_reconstruction_error_is_the_summed_squared_error_of_the_mean_decode():
    torch.manual_seed(0)
    vae = ConvVAE(batch_size=1, is_training=False).eval()
    frames = np.random.default_rng(0).integers(0, 256, size=(7, 64, 64, 3), dtype=np.uint8)
    errors, recon = vprobe.reconstruction_errors(vae, frames)
    x = frames.astype(np.float32) / 255.0
    mu, _ = vae.encode_mu_logvar(x)
    y = vae.decode(mu)  # the numpy path of the ConvVAE, independent of the probe's tensor path
    np.testing.assert_allclose(errors, ((x - y) ** 2).sum(axis=(1, 2, 3)), rtol=1e-4)
    assert recon.dtype == np.uint8 and np.abs(recon.astype(float) - y * 255).max() <= 0.5 + 1e-3


def test_worst_frames_are_the_largest_errors_apart():
    errors = np.zeros(200)
    errors[[10, 12, 50, 120, 121]] = [9.0, 8.0, 7.0, 6.0, 10.0]
    assert vprobe.worst_frames(errors, 3) == [121, 10, 50]  # 12 and 120 lie within APART of a worse one
    assert all(abs(a - b) >= vprobe.APART for a in vprobe.worst_frames(errors, 5)
               for b in vprobe.worst_frames(errors, 5) if a != b)


def test_on_step_sees_every_frame_and_its_action_replaces_the_agents():
    model = Model(load_model=False, cfg=ModelConfig(max_episode_length=12))
    env = make_env()
    taken = []
    step = env.step
    env.step = lambda action: taken.append(np.array(action)) or step(action)
    seen = []

    def on_step(job, episode, t, obs, action):
        seen.append((job, episode, t, obs.shape))
        return np.array([0.5, 0.25, 0.0])

    simulate_batch(model, [env], [np.zeros(model.param_count)], [4], num_episode=2, on_step=on_step)
    assert seen == [(0, e, t, (64, 64, 3)) for e in range(2) for t in range(12)]
    stepped = [a for a in taken if a.shape == (3,)]
    assert len(stepped) >= 24 and all(np.allclose(a, [0.5, 0.25, 0.0]) for a in stepped[-24:])


def test_probe_of_the_shipped_agent_writes_its_figures_and_picture(tmp_path):
    out = tmp_path / "probe.png"
    proc = run_script("reports/vprobe.py", SHIPPED_BEST, "--probe_episodes", 1, "--probe_frames", 40, "--worst", 2,
                      "--out", out, cwd=REPO)
    figures = json.loads(out.with_suffix(".json").read_text())
    assert figures["agent"]["frames"] == figures["data_policy"]["frames"] == 40
    assert figures["ratio"] == pytest.approx(figures["agent"]["mean"] / figures["data_policy"]["mean"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "agent / data policy" in proc.stdout


def test_probe_vae_scores_another_v_on_the_frames_the_agent_drove_with_its_own(tmp_path):
    """--probe_vae: the agent drives with its own V, the given V is scored: a copy of the agent's V
    gives the default probe's figures exactly, a fresh V far worse errors on the same frame counts."""
    (tmp_path / "copy.json").write_bytes((REPO / "vae" / "vae.json").read_bytes())
    torch.manual_seed(1)
    ConvVAE().save_json(tmp_path / "fresh.json")
    figures = {}
    for name, extra in (("own", []), ("copy", ["--probe_vae", tmp_path / "copy.json"]),
                        ("fresh", ["--probe_vae", tmp_path / "fresh.json"])):
        run_script("reports/vprobe.py", SHIPPED_BEST, "--probe_episodes", 1, "--probe_frames", 30, "--worst", 1,
                   "--out", tmp_path / f"{name}.png", *extra, cwd=REPO)
        figures[name] = json.loads((tmp_path / f"{name}.json").read_text())
    for key in ("agent", "data_policy"):
        # The same frames: equal figures, up to the last bit that two V objects' kernels may round
        # differently on some CPUs (seen on an AMD EPYC: per-image errors 1 ulp apart).
        assert figures["copy"][key]["frames"] == figures["own"][key]["frames"]
        assert figures["copy"][key] == pytest.approx(figures["own"][key], rel=1e-6)
        assert figures["fresh"][key]["frames"] == 30 and figures["fresh"][key]["mean"] > 2 * figures["own"][key]["mean"]
    assert figures["fresh"]["vae_path"] == str(tmp_path / "fresh.json")
    assert figures["fresh"]["driven_by"]["vae_path"] == figures["own"]["vae_path"] == "vae/vae.json"


def test_probe_of_a_foreign_file_is_one_line(tmp_path):
    bad = tmp_path / "best.json"
    bad.write_text("[[1, 2, 3], 0]")
    proc = run_script("reports/vprobe.py", bad, "--out", tmp_path / "p.png", cwd=REPO, check=False)
    assert proc.returncode == 2 and "3 parameters" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "p.png").exists()
