"""Encode every recorded frame with the trained VAE: series/series.npz for rnn_train.py.

    python series.py                         # record/ + tf_vae/vae.json -> series/series.npz
    python series.py --config smoke --data_dir runs/smoke/record --vae_path runs/smoke/tf_vae/vae.json \\
                     --series_dir runs/smoke/series

As the original: the first 10,000 files of record/ sorted by name, frames / 255 through the
encoder, and `action`, `mu`, `logvar` stored as float16 arrays of shapes (episodes, frames, 3)
and (episodes, frames, 32) with np.savez_compressed. Unlike the original, episodes stream from
disk (the next one loads while this one encodes), the encoder runs on the GPU when present in
batches of `encode_batch_size` frames, and an episode that is corrupt or whose length differs
from the first one's stops the run with one line naming it (or, with --skip_bad, is left out
with a warning). The output is written atomically: a failed run keeps the previous series.npz.

Episodes recorded with extract.py --record_rewards carry `reward` (T,) and `done` (T,): when
every episode kept has them, series.npz also holds `reward` float32 (N, T) and `done` bool
(N, T) (rnn_train.py --reward_done 1 trains on them); when only some have them, they are left
out with one warning line; without them the file is the original's.
"""
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from tqdm import tqdm

import config
from files import atomic
from files.episodes import REWARD_KEYS, list_episodes, load_episode, rewards_of
from plumbing import cli
from plumbing.cli import UserError
from plumbing.torch_setup import set_torch_for_training
from vae.vae import ConvVAE


def read_episode(path):
    """(obs, action, (reward, done) or None) of episode `path`, or the UserError that describes
    what is wrong with it."""
    try:
        ep = load_episode(path, ("obs", "action"), optional=REWARD_KEYS)
        obs, action = ep["obs"], ep["action"]  # load_episode checked action's shape against the frames
        return obs, action, rewards_of(path, ep, len(obs))
    except UserError as e:
        return e


@torch.no_grad()
def encode(vae, obs, batch_size, device):
    """(mu, logvar) as float16 numpy arrays (T, z_size) for uint8 frames (T, 64, 64, 3)."""
    mus, logvars = [], []
    for at in range(0, len(obs), batch_size):
        x = torch.from_numpy(obs[at:at + batch_size]).to(device).float().div_(255.0)
        mu, logvar = vae.encode_tensor(x)
        mus.append(mu.half().cpu().numpy())
        logvars.append(logvar.half().cpu().numpy())
    return np.concatenate(mus), np.concatenate(logvars)


def main():
    cfg = config.parse(config.SeriesConfig, description=__doc__)
    set_torch_for_training()  # its encodes are M's data
    device = config.torch_device(cfg.device)
    files = list_episodes(cfg.data_dir, cfg.max_files)
    out_path = cfg.series_file()
    atomic.check_writable(cfg.series_dir)

    vae = ConvVAE.from_json(cfg.vae_path, batch_size=cfg.encode_batch_size, is_training=False).to(device)

    action = mu = logvar = None  # allocated at the first good episode, whose length all must share
    kept, skipped, without_rewards = 0, [], []
    bar = tqdm(total=len(files), unit="episode", desc="encoding")
    with bar, ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read_episode, files[0])
        for i, path in enumerate(files):
            episode = pending.result()
            if i + 1 < len(files):
                pending = pool.submit(read_episode, files[i + 1])
            if mu is not None and not isinstance(episode, UserError) and len(episode[0]) != mu.shape[1]:
                episode = UserError(f"{path}: {len(episode[0])} frames, but the episodes before it have "
                                    f"{mu.shape[1]} (series.npz needs one length)")
            if isinstance(episode, UserError):
                if not cfg.skip_bad:
                    raise UserError(f"{episode} (--skip_bad leaves such files out)")
                bar.write(f"warning: skipping {episode}", file=sys.stderr)
                skipped.append(path)
                bar.update(1)
                continue
            obs, act, rewards = episode
            if mu is None:
                action = np.empty((len(files), len(obs), 3), np.float16)
                mu = np.empty((len(files), len(obs), vae.z_size), np.float16)
                logvar = np.empty_like(mu)
                reward, done = np.zeros((len(files), len(obs)), np.float32), np.zeros((len(files), len(obs)), bool)
            action[kept] = act
            if rewards is None:
                without_rewards.append(path)
            else:
                reward[kept], done[kept] = rewards
            mu[kept], logvar[kept] = encode(vae, obs, cfg.encode_batch_size, device)
            kept += 1
            bar.update(1)
            bar.set_postfix(frames_per_s=f"{kept * mu.shape[1] / max(bar.format_dict['elapsed'], 1e-3):.0f}")
    if kept == 0:
        raise UserError(f"{cfg.data_dir}: no usable episodes ({len(skipped)} skipped)")

    with_rewards = {}
    if len(without_rewards) < kept:
        if without_rewards:
            print(f"warning: series.npz without reward and done: {without_rewards[0]} and {len(without_rewards) - 1} "
                  f"other episodes have none ({kept - len(without_rewards)} have them)", file=sys.stderr)
        else:
            with_rewards = dict(reward=reward[:kept], done=done[:kept])
    atomic.save_npz(out_path, action=action[:kept], mu=mu[:kept], logvar=logvar[:kept], **with_rewards)
    print(f"wrote {out_path}: {kept} episodes x {mu.shape[1]} frames" + (", with reward and done" if with_rewards else "")
          + (f", {len(skipped)} skipped" if skipped else ""))


if __name__ == "__main__":
    cli.run(main)
