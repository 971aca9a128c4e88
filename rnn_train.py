"""Train the MDN-RNN (M) on the encoded episodes of series.py; the original's rnn_train.py.

Reads series/series.npz (action (N,T,3), mu (N,T,32), logvar (N,T,32)), writes the first
frame's mu/logvar of up to 1000 episodes to tf_initial_z/initial_z.json, then trains num_steps
batches: batch_size distinct random episodes, a fresh z ~ N(mu, exp(logvar)) per batch, input
(z_t, a_t) predicting z_{t+1} over max_seq_len steps from a zero state, Adam with the
original's lr formula and element-wise gradient clipping. Writes tf_rnn/rnn.json at the end.

With --reward_done 1 (off by default) M also learns each step's reward and done from
series.npz's `reward` and `done` (extract.py --record_rewards, carried by series.py): the
heads at step t predict the reward and done of (z_t, a_t), and the cost is z cost + done cost
+ reward cost (rnn/rnn.py, reward_done_loss), each logged as losses/z_cost, losses/done_cost
and losses/reward_cost. The reward cost counts an episode's steps up to its first done only
(the recording runs on past the env's end, repeating the end's reward: -100 a step off the
playfield, which the real env pays once).

    python rnn_train.py                      # the paper's run (4000 steps x 100 sequences of 999)
    python rnn_train.py --config smoke
    python rnn_train.py --resume             # continue a killed run from tf_rnn/rnn_ckpt.pt
    python rnn_train.py --init_from rnn/rnn.json   # continue a trained M (on the series of a new V)
"""
import dataclasses
import os
import time

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

import config
from config import ADAM_BETAS, ADAM_EPSILON
from files import atomic, checkpoint, npz_data, tfjson
from plumbing import cli
from plumbing.cli import UserError
from plumbing.torch_setup import set_torch_for_training
from rnn.rnn import MDNRNN, episode_steps, mdn_loss, reward_done_loss

SERIES_KEYS = ("action", "mu", "logvar")
SERIES_DTYPES = (np.float16, np.float32, np.float64)
SERIES_MAX_BYTES = 2**31  # per array: 30,000 episodes of 1,000 frames at float16
REWARD_KEYS = ("reward", "done")  # series.py's, with --record_rewards data
REWARD_DTYPES = {"reward": (np.float16, np.float32, np.float64), "done": (np.bool_,)}


def parse_args(argv=None):
    return config.parse(config.RNNConfig, config.RNNTrainConfig, description=__doc__, argv=argv)


def load_series(path, hps):
    """(action, mu, logvar) of series.npz, checked against hps, then (reward, done) when
    hps.reward_done; a one-line UserError otherwise."""
    heads = getattr(hps, "reward_done", 0)
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file (series.py writes it)")
    arrays = npz_data.load(path, "a series file", {k: SERIES_DTYPES for k in SERIES_KEYS}, SERIES_MAX_BYTES,
                           optional=REWARD_DTYPES if heads else None)
    if heads and any(k not in arrays for k in REWARD_KEYS):
        raise UserError(f"{path}: no reward and done for --reward_done 1 (record the episodes with "
                        "extract.py --record_rewards 1, then run series.py again)")
    action, mu, logvar = (arrays[k] for k in SERIES_KEYS)
    rewards = tuple(arrays[k] for k in REWARD_KEYS) if heads else ()
    if not all(np.isfinite(a).all() for a in (action, mu, logvar, *rewards[:1])):
        raise UserError(f"{path}: holds values that are not finite")
    z, width = hps.output_seq_width, hps.input_seq_width - hps.output_seq_width
    if mu.ndim != 3 or mu.shape[2] != z or logvar.shape != mu.shape or action.shape != (*mu.shape[:2], width):
        raise UserError(f"{path}: expected action (N,T,{width}), mu and logvar (N,T,{z}); found action "
                        f"{action.shape}, mu {mu.shape}, logvar {logvar.shape}")
    n, frames = mu.shape[:2]
    if frames < hps.max_seq_len + 1:
        raise UserError(f"{path}: episodes have {frames} frames, training needs max_seq_len + 1 = "
                        f"{hps.max_seq_len + 1} (lower --max_seq_len)")
    if n < hps.batch_size:
        raise UserError(f"{path}: {n} episodes, fewer than batch_size {hps.batch_size} (lower --batch_size)")
    if rewards and (rewards[0].shape != (n, frames) or rewards[1].shape != (n, frames)
                    or not np.issubdtype(rewards[0].dtype, np.floating) or rewards[1].dtype != np.bool_):
        raise UserError(f"{path}: expected reward float (N,T) and done bool (N,T) for mu {mu.shape}; found reward "
                        f"{rewards[0].dtype} {rewards[0].shape}, done {rewards[1].dtype} {rewards[1].shape}")
    return (action, mu, logvar, *rewards)


def random_batch(gen, action, mu, logvar, hps, device, reward=None, done=None):
    """batch_size distinct episodes, a fresh z = mu + exp(logvar / 2) * N(0, 1), and the teacher-forcing
    pair: inputs [z_t, a_t] (B, max_seq_len, 35) and targets z_{t+1} (B, max_seq_len, 32), float32.
    Done in torch (float16 tensors in, one CPU generator, so any device gets the same batches).
    With `reward` and `done` (N, T) tensors, also their targets of step t (B, max_seq_len), float32."""
    indices = torch.randperm(len(mu), generator=gen)[:hps.batch_size]
    frames = hps.max_seq_len + 1
    m, lv = mu[indices, :frames].to(device).float(), logvar[indices, :frames].to(device).float()
    z = m + torch.exp(lv / 2.0) * torch.randn(m.shape, generator=gen).to(device)
    a = action[indices, :frames - 1].to(device).float()
    if reward is None:
        return torch.cat([z[:, :-1], a], 2), z[:, 1:]
    step_reward, step_done = (x[indices, :frames - 1].to(device).float() for x in (reward, done))
    return torch.cat([z[:, :-1], a], 2), z[:, 1:], step_reward, step_done, episode_steps(step_done)


def run_settings(hps, cfg):
    """What a resumed run must share with the run it continues (num_steps may grow)."""
    return dict({k: v for k, v in dataclasses.asdict(hps).items() if k != "num_steps"}, seed=cfg.seed,
                init_from=cfg.init_from)


def prepare_data(hps, cfg):
    """series.npz as tensors (action, mu, logvar, and reward, done with --reward_done 1), after
    initial_z.json is written from it."""
    action, mu, logvar, *rewards = load_series(cfg.series_path, hps)
    atomic.check_writable(cfg.model_save_path)
    atomic.check_writable(cfg.initial_z_save_path)
    tfjson.save_initial_z(cfg.initial_z_file(), mu, logvar)
    return tuple(torch.from_numpy(a) for a in (action, mu, logvar, *rewards))


def build(hps, cfg, device, gen, settings):
    """(rnn, optimizer, first step): fresh (torch's global RNG seeded before), from --init_from, or
    as the checkpoint left them with --resume (which also restores `gen`)."""
    rnn = MDNRNN(hps).to(device)
    if cfg.init_from and not rnn.load_json(cfg.init_from, fresh_heads=True):
        print(f"{cfg.init_from}: an M without reward and done heads; the heads start fresh (--seed {cfg.seed})",
              flush=True)
    optimizer = torch.optim.Adam(rnn.parameters(), lr=hps.learning_rate, betas=ADAM_BETAS, eps=ADAM_EPSILON)
    start = 0
    if cfg.resume:
        before = config.before_options(config.RNNConfig, config.RNNTrainConfig)
        start = checkpoint.restore_training(cfg.checkpoint_file(), "rnn_train.py", settings, before, rnn, optimizer,
                                            gen)["step"]
    return rnn, optimizer, start


def train_step(rnn, optimizer, batch, lr, step, hps):
    """One Adam step on a batch's cost, TF's way (value clipping, TF's epsilon): the MDN cost, plus
    the heads' done and reward costs when the batch carries them. Returns the costs (total first)."""
    inputs, targets, *step_reward_done = batch
    logmix, mean, logstd, _, *heads = rnn(inputs, heads=bool(step_reward_done))
    parts = (mdn_loss(logmix, mean, logstd, targets),)
    if step_reward_done:
        (done_logit, reward_pred), (step_reward, step_done, reward_mask) = heads, step_reward_done
        parts += reward_done_loss(done_logit, reward_pred, step_done, step_reward, hps.restart_factor, reward_mask,
                                  hps.reward_asymmetry)
    cost = sum(parts)
    optimizer.zero_grad(set_to_none=True)
    cost.backward()
    torch.nn.utils.clip_grad_value_(rnn.parameters(), hps.grad_clip)
    for group in optimizer.param_groups:
        group["lr"] = lr
        group["eps"] = config.tf_adam_epsilon(step)
    optimizer.step()
    return (cost.item(), *(p.item() for p in parts)) if len(parts) > 1 else (cost.item(),)


def train(rnn, optimizer, gen, data, hps, cfg, device, start, settings):
    """Steps start..num_steps-1, logged to the terminal and TensorBoard, checkpointed every checkpoint_every."""
    writer = SummaryWriter(cfg.log_dir, purge_step=start)
    settings_text = {**dataclasses.asdict(hps), **dataclasses.asdict(cfg)}
    writer.add_text("config", "  \n".join(f"{k}: {v}" for k, v in settings_text.items()))
    bar = tqdm(total=hps.num_steps * hps.batch_size, initial=start * hps.batch_size, unit="seq",
               desc="rnn_train.py", dynamic_ncols=True)
    last_print = time.time()
    for step in range(start, hps.num_steps):
        lr = (hps.learning_rate - hps.min_learning_rate) * hps.decay_rate ** step + hps.min_learning_rate
        batch = random_batch(gen, *data[:3], hps, device, *data[3:])  # data[3:]: reward, done with the heads
        cost, *parts = train_step(rnn, optimizer, batch, lr, step, hps)
        bar.update(hps.batch_size)
        bar.set_postfix(cost=f"{cost:.4f}")
        writer.add_scalar("losses/cost", cost, step)
        for name, part in zip(("z_cost", "done_cost", "reward_cost"), parts):
            writer.add_scalar(f"losses/{name}", part, step)
        writer.add_scalar("charts/learning_rate", lr, step)
        if step % cfg.log_every == 0 and step > 0:
            now = time.time()
            writer.add_scalar("charts/sequences_per_second", cfg.log_every * hps.batch_size / (now - last_print), step)
            bar.write(f"step: {step}, lr: {lr:.6f}, cost: {cost:.4f}, train_time_taken: {now - last_print:.4f}")
            last_print = now
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == hps.num_steps:
            checkpoint.save_training(cfg.checkpoint_file(), "rnn_train.py", settings, rnn, optimizer, gen,
                                     step=step + 1)
    bar.close()
    writer.close()


def main(argv=None):
    hps, cfg = parse_args(argv)
    if not hps.is_training:
        raise UserError("--is_training 0: rnn_train.py trains (the original's sampling graph is the agent's M)")
    device = config.torch_device(cfg.device)
    set_torch_for_training(cfg.threads)
    data = prepare_data(hps, cfg)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)  # batches and z noise
    settings = run_settings(hps, cfg)
    rnn, optimizer, start = build(hps, cfg, device, gen, settings)

    began = time.time()
    train(rnn, optimizer, gen, data, hps, cfg, device, start, settings)
    seconds = time.time() - began
    done = hps.num_steps - start
    rnn.save_json(cfg.weights_file())
    print(f"trained {done} steps in {seconds:.1f} s: {done * hps.batch_size / max(seconds, 1e-9):.1f} sequences/s; "
          f"wrote {cfg.weights_file()}")


if __name__ == "__main__":
    cli.run(main)
