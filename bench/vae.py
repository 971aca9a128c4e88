"""vae_train.py and series.py throughput against bare tensor loops, and vae_train.py's peak RSS.

    python bench/vae.py [--episodes 200] [--frames 1000] [--seconds 120] [--series_episodes 40]
    python bench/vae.py --shuffle_record runs/smoke/record    # only the shuffle measurement

Writes a synthetic dataset (smooth random colour fields rolled by one pixel per frame, so the
npz files compress and decompress like real frames do, roughly) to a temporary folder, then:
1. runs vae_train.py on it for --seconds (then kills it) and reads its images/s from its
   TensorBoard scalar charts/images_per_second (median after the first interval) and its peak
   RSS (VmHWM) from /proc; against a bare Adam step of the same ConvVAE on a batch of 100
   already in memory, measured before and after (mean). Goal: ratio >= 0.9.
2. runs series.py on the first --series_episodes episodes and reads its frames/s (progress
   bar, loading included), against encode_tensor on 1000 frames already in memory, before and after (mean).
The machine is usually shared: read the ratios, not the absolute numbers.

With --shuffle_record DIR (real episodes), it instead measures how far vae_train.py's windowed
shuffle is from a full shuffle: the variance, across batches, of the batch mean of 19 frame
features (channel means and 16 random projections), for windows of 2, 4, 8 episodes against a
window of all episodes, next to the prediction 1 + rho * (B / W * (N - W) / (N - 1) - 1 / W),
where rho is the share of a feature's variance that lies between episodes. The same formula
then gives the inflation at paper scale (N = 10,000, W = shuffle_files = 100, B = 100).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vae_train
from files import episodes
from vae.vae import ConvVAE


def write_dataset(folder, episodes, frames):
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for i in range(episodes):
        field = np.kron(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
        obs = np.stack([np.roll(field, t, axis=1) for t in range(frames)])
        action = rng.normal(size=(frames, 3)).astype(np.float16)
        np.savez_compressed(os.path.join(folder, f"{i}.npz"), obs=obs, action=action)


def bare_train_images_per_second(steps=8):
    torch.manual_seed(0)
    vae = ConvVAE(is_training=True)
    optimizer = torch.optim.Adam(vae.parameters(), lr=1e-4)
    x = torch.rand(100, 64, 64, 3)
    times = []
    for _ in range(steps + 1):
        began = time.perf_counter()
        loss = vae.loss(x, *vae(x))[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - began)
    return 100 / statistics.median(times[1:])


def bare_encode_frames_per_second(repeats=5):
    vae = ConvVAE()
    x = torch.rand(1000, 64, 64, 3)
    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            began = time.perf_counter()
            vae.encode_tensor(x)
            times.append(time.perf_counter() - began)
    return 1000 / statistics.median(times[1:])


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024


def run_vae_train(folder, seconds):
    cmd = [sys.executable, str(REPO / "vae_train.py"), "--num_epoch", "1", "--log_every", "2",
           "--save_every", "1000000", "--checkpoint_every", "1000000", "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline, peak = time.time() + seconds, 0.0
    while proc.poll() is None and time.time() < deadline:
        peak = max(peak, peak_rss_mb(proc.pid))
        time.sleep(0.5)
    proc.kill()
    stderr = proc.communicate()[1]
    events = EventAccumulator(str(Path(folder) / "runs" / "vae"))
    events.Reload()
    if "charts/images_per_second" not in events.Tags()["scalars"]:
        raise SystemExit(f"vae_train.py logged no throughput in {seconds} s:\n{stderr[-2000:]}")
    rates = [e.value for e in events.Scalars("charts/images_per_second")][1:]
    return statistics.median(rates), len(rates) * 2, peak


def run_series(folder, episodes):
    proc = subprocess.run([sys.executable, str(REPO / "series.py"), "--max_files", str(episodes),
                           "--vae_path", "vae.json", "--device", "cpu"],
                          cwd=folder, capture_output=True, text=True, check=True)
    return float(re.findall(r"frames_per_s=(\d+)", proc.stderr)[-1])


def shuffle_variance(record, epochs=40, batch_size=100):
    files = episodes.list_episodes(record, 10000)
    lengths = [episodes.episode_length(f) for f in files]
    projection = np.random.default_rng(0).normal(size=(64 * 64 * 3, 16)).astype(np.float32) / 64 / np.sqrt(3)

    def features(obs):
        x = obs.astype(np.float32) / 255.0
        return np.concatenate([x.mean(axis=(1, 2)), x.reshape(len(x), -1) @ projection], axis=1)

    per_episode = [features(episodes.load_episode(f)["obs"]) for f in files]
    rho = np.stack([f.mean(0) for f in per_episode]).var(0) / np.concatenate(per_episode).var(0)
    n, variance = len(files), {}
    with ThreadPoolExecutor(1) as pool:
        for w in sorted({2, 4, 8, n}):
            cfg = SimpleNamespace(batch_size=batch_size, shuffle_files=w, seed=1, hflip=False)
            means = [features(b).mean(0) for e in range(epochs)
                     for b in vae_train.epoch_batches(files, lengths, cfg, e, 0, pool)]
            variance[w] = np.var(means, axis=0)

    def predicted(w, n):
        return (1 + rho * (batch_size / w * (n - w) / (n - 1) - 1 / w)).mean()

    print(f"{n} episodes of {record}; between-episode share of feature variance rho = {rho.mean():.3f} (mean)")
    for w in sorted(variance)[:-1]:
        print(f"window {w} episodes: batch-mean variance / full shuffle = {(variance[w] / variance[n]).mean():.2f} "
              f"(predicted {predicted(w, n):.2f})")
    for w in (100, 400):
        print(f"paper scale, shuffle_files {w}: predicted {predicted(w, 10000):.3f}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--seconds", type=int, default=120, help="how long vae_train.py runs before it is killed")
    p.add_argument("--series_episodes", type=int, default=40)
    p.add_argument("--shuffle_record", help="only measure the windowed shuffle on this folder of real episodes")
    args = p.parse_args()
    if args.shuffle_record:
        return shuffle_variance(args.shuffle_record)
    with tempfile.TemporaryDirectory() as tmp:
        began = time.time()
        write_dataset(os.path.join(tmp, "record"), args.episodes, args.frames)
        print(f"synthetic dataset: {args.episodes} episodes x {args.frames} frames ({time.time() - began:.0f} s to write)")
        bare = [bare_train_images_per_second()]
        train_rate, steps, peak = run_vae_train(tmp, args.seconds)
        bare.append(bare_train_images_per_second())
        print(f"vae_train.py: {train_rate:.1f} img/s over {steps} steps; bare step: {np.mean(bare):.1f} img/s "
              f"({bare[0]:.1f} before, {bare[1]:.1f} after); ratio {train_rate / np.mean(bare):.2f}")
        dataset_mb = args.episodes * args.frames * 64 * 64 * 3 / 2 ** 20
        print(f"vae_train.py peak RSS {peak:.0f} MB on {args.episodes} episodes (all frames in RAM, as the "
              f"original: {dataset_mb:.0f} MB of frames alone)")

        ConvVAE().save_json(os.path.join(tmp, "vae.json"))
        bare = [bare_encode_frames_per_second()]
        series_rate = run_series(tmp, args.series_episodes)
        bare.append(bare_encode_frames_per_second())
        print(f"series.py: {series_rate:.0f} frames/s on {args.series_episodes} episodes; bare encode of 1000 "
              f"frames: {np.mean(bare):.0f} frames/s ({bare[0]:.0f} before, {bare[1]:.0f} after); "
              f"ratio {series_rate / np.mean(bare):.2f}")


if __name__ == "__main__":
    main()
