"""Pictures and key figures of a run, written to report/ (run it from the run folder).

    cd runs/smoke && python ../../reports/report.py --config smoke

Writes
  vae_losses.png         VAE training losses (loss, r_loss, kl_loss) against step
  rnn_loss.png           MDN-RNN training cost against step
  cma_history.png        controller training: population mean/min/max and the evaluations
  vae_reconstruction.gif real frames of a recorded episode beside their VAE reconstructions
  agent.gif              the trained agent driving: the frame it sees beside its reconstruction
  dream_t<T>.gif         frames M imagines, decoded by V, at each dream temperature
  vprobe.png             the V probe (vprobe.py): V's worst reconstructions of the agent's frames, and its
                         error on the agent's frames beside the data policy's (figures in summary.json)
  summary.json           each stage's key figures (losses, evaluation, wall time, throughput)
pipeline.py runs it last; it reads the stage timings pipeline.json recorded, when present.
"""
import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script: the root

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import config
import dream_model
from config import DreamConfig, EnvConfig, ModelConfig, ProbeConfig, ReportConfig, TrainConfig
from files import atomic, train_logs
from files.episodes import episode_length, list_episodes, load_episode
from files.media import png_bytes, save_gif, to_uint8
from model import make_model, seeded_agent, simulate
from pipeline import read_state
from plumbing.cli import UserError, run
from plumbing.torch_setup import set_torch_for_acting
from reports import plot_progress, vprobe

# TensorBoard tag -> (legend, y-axis label with units)
CURVES = {
    "vae_losses.png": ("VAE training", [("losses/loss", "loss = r_loss + kl_loss"),
                                        ("losses/r_loss", "r_loss: squared error summed over 64x64x3"),
                                        ("losses/kl_loss", "kl_loss: KL(q(z|x) || N(0, I)), floored at 16")],
                       "per image, mean of a batch of 100 (nats)"),
    "rnn_loss.png": ("MDN-RNN training", [("losses/cost", "cost: MDN negative log-likelihood of z_{t+1}")],
                     "per z dimension and step (nats)"),
}


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


def plot_curves(path, folder, name):
    """A PNG of the TensorBoard scalars of CURVES[name]; returns {tag: last value}, or a note
    (and no PNG) when `folder` holds none of them."""
    title, tags, ylabel = CURVES[name]
    fig, ax = plt.subplots(figsize=(10, 4))
    last = {}
    for tag, legend in tags:
        steps, values = scalars(folder, tag)
        if len(steps):
            ax.plot(steps, values, label=legend)
            last[tag.split("/")[-1]] = float(values[-1])
    if not last:
        plt.close(fig)
        print(f"note: {folder}: no TensorBoard scalars ({', '.join(t for t, _ in tags)}); {name} not drawn")
        return {"missing": f"no TensorBoard scalars in {folder}"}
    ax.set(title=title, xlabel="training step (batch)", ylabel=ylabel)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # outside: it hides no data
    ax.grid(alpha=0.3)
    atomic.write_bytes(path, png_bytes(fig))
    return last


def reconstruction_gif(path, vae, obs, frames):
    """Real frames beside V's reconstruction of their mean latent."""
    shown = obs[:frames:2]
    with torch.inference_mode():
        mu, _ = vae.encode_mu_logvar(shown.astype(np.float32) / 255.0)
        recon = vae.decode(mu)
    save_gif(path, [np.concatenate([to_uint8(r), to_uint8(y)], axis=1) for r, y in zip(shown, recon)],
             caption="real | V")
    return len(shown)


def agent_gif(path, best, model_cfg, env_cfg, frames, seed):
    """The agent's episode on track `seed` as `python model.py render <best> <seed>` drives it (the
    same agent, `model.seeded_agent`, then `simulate`), capped at `frames` steps: the frame it sees
    | V's reconstruction of it, every 2nd step."""
    model = seeded_agent(best, seed, model_cfg, env_cfg)
    shown = []

    def show(job, episode, t, obs, action):
        if t % 2 == 0:
            mu, _ = model.encode_frames(obs[None])
            shown.append(np.concatenate([obs, to_uint8(model.vae.decode(mu)[0])], axis=1))
        return action

    model.make_env(seed=seed)
    (reward,), (t,) = simulate(model, train_mode=True, render_mode=False, num_episode=1, max_len=frames, on_step=show)
    model.env.close()
    save_gif(path, shown, caption="seen | V")
    return {"reward": round(reward, 2), "steps": t + 1}


def stage_figures(cfg, report):
    """summary.json: per stage its key figures. Wall times and the stages' options come from
    pipeline.json when present; a rate is the stage's work divided by its wall time."""
    stages = {}
    if os.path.exists("pipeline.json"):
        stages = read_state("pipeline.json")["stages"]
    seconds = {name: record.get("seconds") for name, record in stages.items()}
    options = {name: record.get("options", {}) for name, record in stages.items()}
    lengths = [episode_length(f) for f in list_episodes(cfg.record_dir, 10**9)]
    frames = sum(lengths)

    def rate(stage, amount):
        return round(amount / seconds[stage], 1) if amount and seconds.get(stage) else None

    vae, rnn = options.get("vae_train", {}), options.get("rnn_train", {})
    images = vae and vae["num_epoch"] * (sum(lengths[:vae["max_files"]]) // vae["batch_size"]) * vae["batch_size"]
    sequences = rnn and rnn["num_steps"] * rnn["batch_size"]

    def train_figures(stage, base):
        hist = train_logs.read_rows(base, ".hist.json", required=False)
        best = train_logs.read_best(base)
        _, env_steps = scalars(os.path.join(os.path.dirname(base), "tensorboard", os.path.basename(base)),
                               "charts/env_steps")
        env_steps = int(env_steps[-1]) if len(env_steps) else None
        return {"generations": len(hist), "best_eval_reward": best[1] if best else None,
                "last_generation": dict(zip(["mean", "min", "max", "std"], hist[-1][2:6])) if hist else None,
                "env_steps": env_steps, "env_steps_per_second": rate(stage, env_steps)}

    restarted_from = stages.get("restart", {}).get("restarted_from")  # then log_base is the restarted run's
    figures = {
        "extract": {"episodes": len(lengths), "frames": frames, "frames_per_second": rate("extract", frames)},
        "vae_train": {"final_losses": report["vae_losses"], "images": images or None,
                      "images_per_second": rate("vae_train", images)},
        "series": {"frames_per_second": rate("series", frames)},
        "rnn_train": {"final_cost": report["rnn_loss"].get("cost", report["rnn_loss"].get("missing")),
                      "sequences": sequences or None, "sequences_per_second": rate("rnn_train", sequences)},
        "train": train_figures("train", restarted_from or cfg.log_base),
        **({"restart": train_figures("restart", cfg.log_base)} if restarted_from else {}),
        "evaluate": {k: v for k, v in stages.get("evaluate", {}).items() if k not in ("seconds", "options")},
        "report": {"agent_episode": report["agent"], "gifs": report["gifs"], "vprobe": report["vprobe"]},
    }
    for stage, values in figures.items():
        if seconds.get(stage) is not None:
            values["seconds"] = seconds[stage]
    return figures


def main():
    p = config.parser(ReportConfig, ModelConfig, DreamConfig, EnvConfig, description=__doc__.split("\n\n")[0])
    args = p.parse_args()
    cfg, model_cfg, dream_cfg, env_cfg = config.from_args(args, ReportConfig, ModelConfig, DreamConfig, EnvConfig)
    try:
        temperatures = [float(t) for t in cfg.dream_temperatures.split(",")]
    except ValueError:
        raise UserError(f"--dream_temperatures {cfg.dream_temperatures}: expected numbers separated by commas") from None
    if not cfg.log_base:
        preset = vars(args).get("config", "paper")
        cfg = dataclasses.replace(cfg, log_base=train_logs.log_base(config.preset(TrainConfig, preset), env_cfg))
    set_torch_for_acting(1)  # the agent's episode runs as in model.py
    atomic.check_writable(cfg.report_dir)

    def out(name):
        return os.path.join(cfg.report_dir, name)

    report = {"gifs": {}}

    report["vae_losses"] = plot_curves(out("vae_losses.png"), cfg.vae_tensorboard, "vae_losses.png")
    report["rnn_loss"] = plot_curves(out("rnn_loss.png"), cfg.rnn_tensorboard, "rnn_loss.png")
    plot_progress.plot(cfg.log_base, out("cma_history.png"))

    model = make_model(cfg=model_cfg, env_cfg=env_cfg)
    model.load_model(cfg.log_base + ".best.json")
    episode = list_episodes(cfg.record_dir, 1)[0]
    obs = load_episode(episode)["obs"]
    report["gifs"]["vae_reconstruction.gif"] = reconstruction_gif(out("vae_reconstruction.gif"), model.vae, obs,
                                                                  cfg.gif_frames)
    report["agent"] = agent_gif(out("agent.gif"), cfg.log_base + ".best.json", model_cfg, env_cfg,
                                min(cfg.gif_frames, model_cfg.max_episode_length), cfg.seed)
    report["gifs"]["agent.gif"] = (report["agent"]["steps"] + 1) // 2
    for temperature in temperatures:
        name = f"dream_t{temperature:g}.gif"
        report["gifs"][name] = dream_model.dream_gif(model, out(name), temperature,
                                                     min(dream_cfg.max_frames, cfg.gif_frames), cfg.seed,
                                                     initial_z_path=dream_cfg.initial_z_path)

    probe_cfg = ProbeConfig(probe_frames=model_cfg.max_episode_length)
    report["vprobe"], picture = vprobe.probe(model, model.model_params, probe_cfg, env_cfg)
    atomic.write_bytes(out("vprobe.png"), picture)

    summary = {"config": vars(args).get("config", "paper"), "episode_of_reconstruction_gif": episode,
               "stages": stage_figures(cfg, report)}
    atomic.save_json(out("summary.json"), summary, indent=1)
    print(f"report written to {cfg.report_dir}/: " + ", ".join(sorted(os.listdir(cfg.report_dir))))


if __name__ == "__main__":
    run(main)
