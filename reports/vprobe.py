"""The V probe: is V good enough where the agent drives?

    python reports/vprobe.py log/carracing.cma.4.16.best.json --config small   # the shipped agent, from the root
    python reports/vprobe.py log/carracing.cma.4.16.best.json --probe_vae other/vae.json   # another V, same frames
    cd runs/small && python ../../reports/vprobe.py log/carracing.cma.4.16.best.json --config small

V's reconstruction error on the frames the agent itself sees, beside its error on frames of
the data policy (the original's random policy, extract.py), both on tracks the training never
used (--probe_seed on): per-image squared error of the mean decode, summed over 64x64x3 with
pixels in [0, 1] (the unit of vae_train.py's r_loss). A V trained on the random policy's data,
which leaves the road within seconds, sees few corners; the agent's frames show where that
hurts. Writes --out (default vprobe.png): the agent's worst-reconstructed frames above V's
reconstructions of them, and vprobe.json beside it with the figures. report.py runs it too.
"""
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script: the root

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import config
import extract
from agent.rollout import simulate_batch
from config import EnvConfig, ModelConfig, ProbeConfig
from env import env_from_config
from files import atomic
from files.media import png_bytes
from model import make_model
from plumbing.cli import run
from plumbing.torch_setup import set_torch_for_acting
from vae.vae import ConvVAE

ENCODE_BATCH = 500  # frames per V call: bounded memory, a few calls per episode
APART = 25  # frames between two pictured frames (half a second), so that one bad moment fills one column


def agent_frames(model, params, cfg, env_cfg):
    """The 64x64 frames the agent sees in cfg.probe_episodes episodes of at most cfg.probe_frames
    frames (z noise as simulate_batch's)."""
    envs = [env_from_config(env_cfg) for _ in range(cfg.probe_episodes)]
    seen = []
    simulate_batch(model, envs, [params], [cfg.probe_seed], num_episode=cfg.probe_episodes, train_mode=True,
                   max_len=cfg.probe_frames, on_step=lambda job, episode, t, obs, action: seen.append(obs) or action)
    for env in envs:
        env.close()
    return np.stack(seen)


def policy_frames(cfg, env_cfg):
    """The frames of the data policy (extract.py's random policy) on one track per seed."""
    envs = [env_from_config(env_cfg, full_episode=True) for _ in range(cfg.probe_episodes)]
    seeds = range(cfg.probe_seed, cfg.probe_seed + cfg.probe_episodes)
    episodes = extract.record(envs, seeds, cfg.probe_frames, types.SimpleNamespace(add=lambda frames: None))
    for env in envs:
        env.close()
    return np.concatenate([episode[0] for episode in episodes])  # (obs, action, reward, done) each


def reconstruction_errors(vae, frames):
    """(errors, reconstructions): per-image squared error of the mean decode, and the decodes (uint8)."""
    errors, recon = [], []
    with torch.inference_mode():
        for start in range(0, len(frames), ENCODE_BATCH):
            x = torch.from_numpy(np.ascontiguousarray(frames[start:start + ENCODE_BATCH])).float().div_(255.0)
            y = vae.decode_tensor(vae.encode_tensor(x)[0])
            errors.append(((x - y) ** 2).sum(dim=(1, 2, 3)).numpy())
            recon.append((y * 255.0).round().byte().numpy())
    return np.concatenate(errors), np.concatenate(recon)


def stats(errors):
    return {"frames": int(len(errors)), "mean": float(errors.mean()), "median": float(np.median(errors)),
            "p90": float(np.percentile(errors, 90))}


def worst_frames(errors, n):
    """Indices of the n largest errors, worst first, no two closer than APART frames."""
    worst = []
    for i in np.argsort(errors, kind="stable")[::-1]:
        if len(worst) == n:
            break
        if all(abs(i - j) >= APART for j in worst):
            worst.append(int(i))
    return worst


def worst_picture(frames, recon, errors, n, figures):
    """PNG bytes: the n worst frames (worst_frames, top) above V's reconstructions (bottom), each
    with its error."""
    worst = worst_frames(errors, n)
    fig, axes = plt.subplots(2, len(worst), figsize=(1.6 * len(worst), 4.0), squeeze=False)
    for col, i in enumerate(worst):
        for row, image in enumerate((frames[i], recon[i])):
            axes[row, col].imshow(image)
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
        axes[0, col].set_title(f"error {errors[i]:.0f}", fontsize=8)
    axes[0, 0].set_ylabel("agent's frame", fontsize=8)
    axes[1, 0].set_ylabel("V's reconstruction", fontsize=8)
    agent, data = figures["agent"], figures["data_policy"]
    fig.suptitle(f"V's worst reconstructions of the agent's frames. Error per image (mean / 90th pct): agent "
                 f"{agent['mean']:.1f} / {agent['p90']:.1f}, data policy {data['mean']:.1f} / {data['p90']:.1f}",
                 fontsize=8)
    return png_bytes(fig)


def probe(model, params, cfg, env_cfg, vae=None):
    """The probe's figures, and its picture as PNG bytes, of V `vae` (default: the agent's own)."""
    vae = model.vae if vae is None else vae
    seen = agent_frames(model, params, cfg, env_cfg)
    errors, recon = reconstruction_errors(vae, seen)
    data_errors, _ = reconstruction_errors(vae, policy_frames(cfg, env_cfg))
    figures = {"agent": stats(errors), "data_policy": stats(data_errors), "probe_seed": cfg.probe_seed,
               "episodes": cfg.probe_episodes}
    figures["ratio"] = figures["agent"]["mean"] / figures["data_policy"]["mean"]
    return figures, worst_picture(seen, recon, errors, cfg.worst, figures)


def main():
    p = config.parser(ProbeConfig, ModelConfig, EnvConfig, description=__doc__.split("\n\n")[0])
    p.add_argument("params", help="the agent's controller JSON (best.json or a generation's .json)")
    args = p.parse_args()
    cfg, model_cfg, env_cfg = config.from_args(args, ProbeConfig, ModelConfig, EnvConfig)
    set_torch_for_acting(cfg.probe_episodes)
    model = make_model(cfg=model_cfg, env_cfg=env_cfg)
    model.load_model(args.params)
    probed = ConvVAE.from_json(cfg.probe_vae, batch_size=1, is_training=False) if cfg.probe_vae else None
    figures, picture = probe(model, model.model_params, cfg, env_cfg, probed)
    atomic.check_writable(os.path.dirname(cfg.out) or ".")
    atomic.write_bytes(cfg.out, picture)
    figures_path = os.path.splitext(cfg.out)[0] + ".json"
    atomic.save_json(figures_path, dict(figures, vae_path=cfg.probe_vae or model_cfg.vae_path, driven_by=dict(
        vae_path=model_cfg.vae_path, rnn_path=model_cfg.rnn_path), params=args.params), indent=1)
    for name in ("agent", "data_policy"):
        s = figures[name]
        print(f"{name:12s} {s['frames']:5d} frames  error mean {s['mean']:6.1f}  median {s['median']:6.1f}  "
              f"90th pct {s['p90']:6.1f}")
    print(f"agent / data policy: {figures['ratio']:.2f}; wrote {cfg.out} and {figures_path}")


if __name__ == "__main__":
    run(main)
