"""Train the ConvVAE (V) on recorded episodes and write tf_vae/vae.json in the original's format.

    python vae_train.py                      # paper: first 10,000 files of record/, 10 epochs
    python vae_train.py --config smoke --data_dir runs/smoke/record --model_save_path runs/smoke/tf_vae
    python vae_train.py --resume             # continue a killed run from tf_vae/vae_ckpt.pt
    python vae_train.py --init_from vae/vae.json --data_dir record_agent   # continue a trained V on new data

As the original: Adam (lr 1e-4), batches of 100 frames / 255, floor(frames / 100) batches per
epoch, every frame seen once per epoch, vae.json every 5000 steps and at the end.

Unlike the original, which loads every frame into RAM (~123 GB for 10,000 episodes), frames
stream from disk. Each epoch visits the episode files in a fresh random order, in windows of
`shuffle_files` episodes; a window is loaded whole (the next one loads in the background) and
its frames are served in a random permutation. A batch of 100 frames thus comes from up to 100
different episodes of a random window: within a batch this matches full shuffling closely, and
memory is two windows (~2.5 GB at 100 episodes) whatever the dataset size. The order (and, with
--hflip, which frames are mirrored) is a pure function of (seed, epoch), which is what makes
`--resume` continue exactly where the run stopped.
"""
import dataclasses
import io
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

import config
from files import atomic, checkpoint
from files.episodes import FRAME_SHAPE, episode_length, list_episodes, load_episode
from plumbing import cli
from plumbing.cli import UserError
from plumbing.torch_setup import set_torch_for_training
from vae.vae import ConvVAE

# Fields that may differ between a run and its resumption: amounts, paths, logging, the device
# (the data itself is compared file by file instead of data_dir and max_files).
MAY_DIFFER_ON_RESUME = ("num_epoch", "max_steps", "data_dir", "max_files", "model_save_path", "device", "log_every",
                        "save_every", "checkpoint_every", "resume", "log_dir")


def epoch_batches(files, lengths, cfg, epoch, start_batch, pool):
    """Yield the epoch's uint8 batches (batch_size, 64, 64, 3) from batch `start_batch` on.

    The frame stream is: files in a random order, cut into windows of `shuffle_files` files,
    each window's frames in a random permutation. Batches are consecutive slices of that
    stream (a batch may span two windows); the last partial batch is dropped, as the original.
    """
    bs = cfg.batch_size
    num_batches = sum(lengths) // bs
    order = np.random.default_rng([cfg.seed, epoch]).permutation(len(files))
    windows = [order[i:i + cfg.shuffle_files] for i in range(0, len(order), cfg.shuffle_files)]
    sizes = [sum(lengths[j] for j in w) for w in windows]
    skip, first = start_batch * bs, 0  # stream position to start at, and the window holding it
    while first < len(windows) and skip >= sizes[first]:
        skip -= sizes[first]
        first += 1

    def load(k):
        frames = np.empty((sizes[k], *FRAME_SHAPE), np.uint8)
        at = 0
        for j in windows[k]:
            frames[at:at + lengths[j]] = load_episode(files[j])["obs"]
            at += lengths[j]
        rng = np.random.default_rng([cfg.seed, epoch, k])
        perm = rng.permutation(sizes[k])
        if cfg.hflip:
            mirrored = rng.random(sizes[k]) < 0.5
            frames[mirrored] = frames[mirrored, :, ::-1]
        return frames, perm

    batch, served = start_batch, []  # `served`: frames of the batch being assembled
    pending = pool.submit(load, first) if first < len(windows) else None
    for k in range(first, len(windows)):
        frames, perm = pending.result()
        pending = pool.submit(load, k + 1) if k + 1 < len(windows) else None
        at = skip if k == first else 0
        while at < len(perm) and batch < num_batches:
            take = perm[at:at + bs - sum(len(s) for s in served)]
            served.append(frames[take])
            at += len(take)
            if sum(len(s) for s in served) == bs:
                yield served[0] if len(served) == 1 else np.concatenate(served)
                served, batch = [], batch + 1
        del frames, perm


def save_grid(path, real, recon):
    """PNG of real frames (top row) above their reconstructions (bottom row), scaled x2."""
    rows = [np.concatenate(list(r), axis=1) for r in (real, recon)]
    grid = np.concatenate(rows, axis=0)
    image = Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic.write_bytes(path, buf.getvalue())
    return grid


def scan(cfg):
    """The training files, their lengths (headers only) and the batches of an epoch."""
    files = list_episodes(cfg.data_dir, cfg.max_files)
    lengths = [episode_length(f) for f in tqdm(files, desc="scanning episodes", unit="file", leave=False)]
    num_batches = sum(lengths) // cfg.batch_size
    if num_batches == 0:
        raise UserError(f"{cfg.data_dir}: {sum(lengths)} frames, fewer than one batch of {cfg.batch_size}")
    return files, lengths, num_batches


def train_step(vae, optimizer, noise, frames, device, step):
    """Adam step `step` (0-based, TF's epsilon) on a uint8 batch; returns the detached (loss,
    r_loss, kl_loss)."""
    x = torch.from_numpy(frames).to(device).float().div_(255.0)  # the original: obs / 255.0
    y, mu, logvar = vae(x, generator=noise)
    loss, r_loss, kl_loss = vae.loss(x, y, mu, logvar)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for group in optimizer.param_groups:
        group["eps"] = config.tf_adam_epsilon(step)
    optimizer.step()
    return torch.stack([loss, r_loss, kl_loss]).detach()


def log_losses(writer, bar, losses, step, images_per_second):
    values = dict(zip(("loss", "r_loss", "kl_loss"), losses.tolist()))
    for name, value in values.items():
        writer.add_scalar(f"losses/{name}", value, step)
    writer.add_scalar("charts/images_per_second", images_per_second, step)
    bar.set_postfix({k: f"{v:.2f}" for k, v in values.items()})


def end_epoch(vae, preview, device, cfg, writer, bar, epoch, sums, count):
    """The epoch's mean losses (printed), and its reconstructions of the preview frames: a PNG and a
    TensorBoard image."""
    if count:
        mean = (sums / count).tolist()
        bar.write(f"epoch {epoch + 1}/{cfg.num_epoch}: loss {mean[0]:.3f}  r_loss {mean[1]:.3f}  "
                  f"kl_loss {mean[2]:.3f}  (mean of {count} steps)")
    with torch.no_grad():
        x = torch.from_numpy(preview).to(device).float() / 255.0
        recon = (vae.decode_tensor(vae.encode_tensor(x)[0]) * 255.0).round().byte().cpu().numpy()
    grid = save_grid(os.path.join(cfg.log_dir, f"reconstruction_epoch{epoch + 1:03d}.png"), preview, recon)
    writer.add_image("reconstruction", grid, epoch + 1, dataformats="HWC")


def main():
    cfg = config.parse(config.VAEConfig, description=__doc__)
    set_torch_for_training()
    device = config.torch_device(cfg.device)
    files, lengths, num_batches = scan(cfg)
    print(f"{len(files)} episodes, {sum(lengths)} frames, {num_batches} batches per epoch, device {device}")

    # Model, optimizer (TF Adam defaults) and the noise of the reparameterisation.
    torch.manual_seed(cfg.seed)
    vae = ConvVAE(z_size=cfg.z_size, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
                  kl_tolerance=cfg.kl_tolerance, is_training=True).to(device)
    if cfg.init_from:
        vae.load_json(cfg.init_from)
    optimizer = torch.optim.Adam(vae.parameters(), lr=cfg.learning_rate, betas=config.ADAM_BETAS, eps=config.ADAM_EPSILON)
    noise = torch.Generator(device).manual_seed(cfg.seed)
    json_path, ckpt_path = cfg.weights_file(), cfg.checkpoint_file()
    settings = dict(run_settings(cfg), files=[os.path.basename(f) for f in files], lengths=lengths)
    at = dict(epoch=0, batch=0, step=0)  # where training stands: what a checkpoint records
    if cfg.resume:
        before = config.before_options(config.VAEConfig)
        at = checkpoint.restore_training(ckpt_path, "vae_train.py", settings, before, vae, optimizer, noise)
        print(f"resuming at epoch {at['epoch'] + 1}, batch {at['batch']}, step {at['step']}")
    atomic.check_writable(cfg.model_save_path)
    atomic.check_writable(cfg.log_dir)
    writer = SummaryWriter(cfg.log_dir, flush_secs=10)  # a killed run keeps its scalars
    writer.add_text("config", "  \n".join(f"{k}: {v}" for k, v in dataclasses.asdict(cfg).items()))
    preview = np.stack([load_episode(f)["obs"][n // 2] for f, n in list(zip(files, lengths))[:8]])

    last = cfg.num_epoch * num_batches  # the step training ends after
    if cfg.max_steps:
        last = min(last, cfg.max_steps)
    bar = tqdm(total=last * cfg.batch_size, initial=at["step"] * cfg.batch_size,
               unit="img", desc="training", smoothing=0.05)
    with bar, ThreadPoolExecutor(max_workers=1) as pool:
        while at["step"] < last:
            sums, count, tick, tick_step = torch.zeros(3, device=device), 0, time.perf_counter(), at["step"]
            for frames in epoch_batches(files, lengths, cfg, at["epoch"], at["batch"], pool):
                losses = train_step(vae, optimizer, noise, frames, device, at["step"])
                at.update(step=at["step"] + 1, batch=at["batch"] + 1)
                sums, count, step = sums + losses, count + 1, at["step"]
                bar.update(cfg.batch_size)
                if step % cfg.log_every == 0:
                    now = time.perf_counter()
                    log_losses(writer, bar, losses, step, (step - tick_step) * cfg.batch_size / (now - tick))
                    tick, tick_step = now, step
                if step % cfg.save_every == 0:
                    vae.save_json(json_path)
                if step % cfg.checkpoint_every == 0:
                    checkpoint.save_training(ckpt_path, "vae_train.py", settings, vae, optimizer, noise, **at)
                if step == last:
                    break
            if at["batch"] < num_batches:  # --max_steps ended the run inside an epoch
                checkpoint.save_training(ckpt_path, "vae_train.py", settings, vae, optimizer, noise, **at)
                break
            end_epoch(vae, preview, device, cfg, writer, bar, at["epoch"], sums, count)
            at.update(epoch=at["epoch"] + 1, batch=0)
            checkpoint.save_training(ckpt_path, "vae_train.py", settings, vae, optimizer, noise, **at)
    writer.close()
    vae.save_json(json_path)
    print(f"wrote {json_path} after {at['step']} steps")


def run_settings(cfg):
    """What a resumed run must share with the run it continues (num_epoch may grow)."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in MAY_DIFFER_ON_RESUME}


if __name__ == "__main__":
    cli.run(main)
