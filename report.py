"""Pictures and key figures of a run, written to report/ (run it from the run folder).

    cd runs/smoke && python ../../report.py --config smoke --log_base log/carracing.cma.1.4

Writes
  vae_losses.png         VAE training losses (loss, r_loss, kl_loss) against step
  rnn_loss.png           MDN-RNN training cost against step
  cma_history.png        controller training: population mean/min/max and the evaluations
  vae_reconstruction.gif real frames of a recorded episode beside their VAE reconstructions
  agent.gif              the trained agent driving: the frame it sees beside its reconstruction
  dream_t<T>.gif         frames M imagines, decoded by V, at each dream temperature
  summary.json           each stage's key figures (losses, evaluation, wall time, throughput)
pipeline.py runs it last; it reads the stage timings pipeline.json recorded, when present.
"""
import glob
import io
import json
import os

import matplotlib

matplotlib.use("Agg")
import imageio.v3 as iio
import matplotlib.pyplot as plt
import numpy as np
import torch

import atomic
import config
import dream_model
import plot_progress
from cli import UserError, run
from config import DreamConfig, EnvConfig, ModelConfig, ReportConfig
from model import make_model

GIF_SCALE = 3  # 64x64 frames are shown 3x larger
GIF_MS_PER_FRAME = 40


def scalars(folder, tag):
    """(steps, values) of a TensorBoard scalar in `folder` (empty when absent)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not os.path.isdir(folder):
        return np.zeros(0), np.zeros(0)
    events = EventAccumulator(folder, size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags()["scalars"]:
        return np.zeros(0), np.zeros(0)
    by_step = {e.step: e.value for e in events.Scalars(tag)}  # a resumed run may repeat steps: keep the last
    steps = np.array(sorted(by_step))
    return steps, np.array([by_step[s] for s in steps])


def plot_curves(path, folder, tags, title):
    """A PNG of the TensorBoard scalars `tags`; returns {tag: last value}."""
    fig, ax = plt.subplots(figsize=(7, 4))
    last = {}
    for tag in tags:
        steps, values = scalars(folder, tag)
        if len(steps):
            ax.plot(steps, values, label=tag.split("/")[-1])
            last[tag.split("/")[-1]] = float(values[-1])
    ax.set(title=title, xlabel="step")
    ax.legend()
    ax.grid(alpha=0.3)
    save_png(fig, path)
    return last


def save_png(fig, path):
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())


def save_gif(path, frames):
    """Frames (float in [0, 1] or uint8, HxWx3) upscaled GIF_SCALE times, written atomically."""
    big = [np.kron(to_uint8(f), np.ones((GIF_SCALE, GIF_SCALE, 1), np.uint8)) for f in frames]
    atomic.write_bytes(path, iio.imwrite("<bytes>", big, extension=".gif", duration=GIF_MS_PER_FRAME, loop=0))


def to_uint8(frame):
    return frame if frame.dtype == np.uint8 else (np.clip(frame, 0, 1) * 255).round().astype(np.uint8)


def first_episode(record_dir):
    files = sorted(glob.glob(os.path.join(record_dir, "*.npz")))
    if not files:
        raise UserError(f"{record_dir}: no episode files (*.npz)")
    with np.load(files[0]) as f:
        return files[0], f["obs"]


def reconstruction_gif(path, vae, obs, frames):
    """Real frames beside V's reconstruction of their mean latent."""
    shown = obs[:frames:2]
    with torch.inference_mode():
        mu, _ = vae.encode_mu_logvar(shown.astype(np.float32) / 255.0)
        recon = vae.decode(mu)
    save_gif(path, [np.concatenate([to_uint8(r), to_uint8(y)], axis=1) for r, y in zip(shown, recon)])
    return len(shown)


def agent_gif(path, model, frames, seed):
    """One episode of the agent (its own loop, as simulate's): the frame it sees | reconstruction."""
    np.random.seed(seed)
    model.make_env(seed=seed)
    model.reset()
    obs, shown, total = model.env.reset(), [], 0.0
    for t in range(frames):
        z, mu, _ = model.encode_obs(obs)
        if t % 2 == 0:
            shown.append(np.concatenate([obs, to_uint8(model.vae.decode(mu[None].astype(np.float32))[0])], axis=1))
        obs, reward, done, _ = model.env.step(model.get_action(z))
        total += reward
        if done:
            break
    model.env.close()
    save_gif(path, shown)
    return {"reward": round(total, 2), "steps": t + 1}


def stage_figures(cfg, report):
    """summary.json: per stage its key figures; wall times come from pipeline.json when present."""
    timings = {}
    if os.path.exists("pipeline.json"):
        with open("pipeline.json") as f:
            timings = json.load(f).get("stages", {})
    files = sorted(glob.glob(os.path.join(cfg.record_dir, "*.npz")))
    frames = 0
    for name in files:
        with np.load(name) as f:
            frames += len(f["action"])

    def per_second(stage, amount):
        seconds = timings.get(stage, {}).get("seconds")
        return round(amount / seconds, 1) if seconds else None

    hist, best = [], None
    if os.path.exists(cfg.log_base + ".hist.json"):
        with open(cfg.log_base + ".hist.json") as f:
            hist = json.load(f)
    if os.path.exists(cfg.log_base + ".best.json"):
        with open(cfg.log_base + ".best.json") as f:
            best = json.load(f)[1]
    _, vae_speed = scalars(cfg.vae_tensorboard, "charts/images_per_second")
    _, rnn_speed = scalars(cfg.rnn_tensorboard, "charts/sequences_per_second")
    _, env_speed = scalars(os.path.join(os.path.dirname(cfg.log_base), "tensorboard", os.path.basename(cfg.log_base)),
                           "perf/env_steps_per_second")
    stages = {
        "extract": {"episodes": len(files), "frames": frames, "frames_per_second": per_second("extract", frames)},
        "vae_train": {"final_losses": report["vae_losses"],
                      "images_per_second": round(float(vae_speed.mean()), 1) if len(vae_speed) else None},
        "series": {"frames_per_second": per_second("series", frames)},
        "rnn_train": {"final_cost": report["rnn_loss"].get("cost"),
                      "sequences_per_second": round(float(rnn_speed.mean()), 1) if len(rnn_speed) else None},
        "train": {"generations": len(hist), "best_eval_reward": best,
                  "last_generation": dict(zip(["mean", "min", "max", "std"], hist[-1][2:6])) if hist else None,
                  "env_steps_per_second": round(float(env_speed.mean()), 1) if len(env_speed) else None},
        "evaluate": {k: v for k, v in timings.get("evaluate", {}).items() if k != "seconds"},
        "report": {"agent_episode": report["agent"], "gifs": report["gifs"]},
    }
    for stage, figures in stages.items():
        if stage in timings:
            figures["seconds"] = timings[stage]["seconds"]
    return stages


def main():
    p = config.parser(ReportConfig, ModelConfig, DreamConfig, EnvConfig, description=__doc__.split("\n\n")[0])
    args = p.parse_args()
    cfg, model_cfg, dream_cfg, env_cfg = config.from_args(args, ReportConfig, ModelConfig, DreamConfig, EnvConfig)
    try:
        temperatures = [float(t) for t in cfg.dream_temperatures.split(",")]
    except ValueError:
        raise UserError(f"--dream_temperatures {cfg.dream_temperatures}: expected numbers separated by commas") from None
    torch.set_num_threads(2)
    atomic.check_writable(cfg.report_dir)

    def out(name):
        return os.path.join(cfg.report_dir, name)

    report = {"gifs": {}}

    report["vae_losses"] = plot_curves(out("vae_losses.png"), cfg.vae_tensorboard,
                                       ["losses/loss", "losses/r_loss", "losses/kl_loss"], "VAE training")
    report["rnn_loss"] = plot_curves(out("rnn_loss.png"), cfg.rnn_tensorboard, ["losses/cost"], "MDN-RNN training")
    plot_progress.plot(cfg.log_base, out("cma_history.png"))

    model = make_model(cfg=model_cfg, env_cfg=env_cfg)
    model.load_model(cfg.log_base + ".best.json")
    episode, obs = first_episode(cfg.record_dir)
    report["gifs"]["vae_reconstruction.gif"] = reconstruction_gif(out("vae_reconstruction.gif"), model.vae, obs,
                                                                  cfg.gif_frames)
    report["agent"] = agent_gif(out("agent.gif"), model, min(cfg.gif_frames, model_cfg.max_episode_length), cfg.seed)
    report["gifs"]["agent.gif"] = (report["agent"]["steps"] + 1) // 2
    for temperature in temperatures:
        name = f"dream_t{temperature:g}.gif"
        report["gifs"][name] = dream_model.dream_gif(model, out(name), temperature,
                                                     min(dream_cfg.max_frames, cfg.gif_frames), cfg.seed,
                                                     initial_z_path=dream_cfg.initial_z_path)

    summary = {"config": vars(args).get("config", "paper"), "episode_of_reconstruction_gif": episode,
               "stages": stage_figures(cfg, report)}
    atomic.save_json(out("summary.json"), summary, indent=1)
    print(f"report written to {cfg.report_dir}/: " + ", ".join(sorted(os.listdir(cfg.report_dir))))


if __name__ == "__main__":
    run(main)
