"""rnn_train.py's training throughput against a bare training step, and the agent's per-step RNN cost.

    python bench/rnn.py [--batch_size 100] [--max_seq_len 999] [--steps 4] [--threads 2]

1. sequences/s of rnn_train.py (its own loop: batch sampling from a synthetic float16 series
   file, z noise, forward, loss, backward, clipping, Adam, logging) over --steps steps, against
   the same network and optimizer stepping on tensors already in memory (both from a fresh model,
   first step included, best of two interleaved runs). Goal: ratio >= 0.9.
2. microseconds per call of rnn_next_state (batch 1, the agent's hot path), of the torch single
   step, and per environment of the batched torch step at B = 64.
"""
import argparse
import contextlib
import io
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

import config
import rnn_train
from rnn.rnn import MDNRNN, hps_sample, mdn_loss, rnn_init_state, rnn_next_state


def bare_sequences_per_second(hps, steps):
    torch.manual_seed(0)
    rnn = MDNRNN(hps)
    optimizer = torch.optim.Adam(rnn.parameters(), lr=hps.learning_rate)
    x = torch.randn(hps.batch_size, hps.max_seq_len, hps.input_seq_width)
    y = torch.randn(hps.batch_size, hps.max_seq_len, hps.output_seq_width)
    began = time.time()
    for _ in range(steps):
        cost = mdn_loss(*rnn(x)[:3], y)
        optimizer.zero_grad(set_to_none=True)
        cost.backward()
        torch.nn.utils.clip_grad_value_(rnn.parameters(), hps.grad_clip)
        optimizer.step()
        cost.item()
    return steps * hps.batch_size / (time.time() - began)


def script_sequences_per_second(hps, steps, folder):
    n, frames = 2 * hps.batch_size, hps.max_seq_len + 1
    rng = np.random.RandomState(0)
    np.savez(f"{folder}/series.npz", action=rng.uniform(-1, 1, (n, frames, 3)).astype(np.float16),
             mu=rng.randn(n, frames, 32).astype(np.float16), logvar=np.full((n, frames, 32), -2, np.float16))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rnn_train.main(["--series_path", f"{folder}/series.npz", "--model_save_path", f"{folder}/tf_rnn",
                        "--initial_z_save_path", f"{folder}/tf_initial_z", "--log_dir", f"{folder}/runs",
                        "--device", "cpu", "--num_steps", str(steps), "--batch_size", str(hps.batch_size),
                        "--max_seq_len", str(hps.max_seq_len)])
    return float(re.search(r"([\d.]+) sequences/s", out.getvalue()).group(1))


def microseconds(fn, calls):
    fn()
    began = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - began) / calls * 1e6


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch_size", type=int, default=100)
    p.add_argument("--max_seq_len", type=int, default=999)
    p.add_argument("--steps", type=int, default=4, help="training steps per measurement")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    hps = config.preset(config.RNNConfig, batch_size=args.batch_size, max_seq_len=args.max_seq_len)

    bare, script = [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(2):  # interleaved, best of two: the machine is shared
            bare.append(bare_sequences_per_second(hps, args.steps))
            script.append(script_sequences_per_second(hps, args.steps, folder))
    bare, script = max(bare), max(script)
    print(f"training, batch {hps.batch_size} x {hps.max_seq_len}, {args.steps} steps, {args.threads} threads, "
          f"best of 2 interleaved runs each:")
    print(f"  bare step on in-memory tensors : {bare:8.2f} sequences/s ({hps.batch_size / bare:.2f} s/step)")
    print(f"  rnn_train.py                   : {script:8.2f} sequences/s")
    print(f"  ratio rnn_train / bare         : {script / bare:8.3f}   (goal >= 0.9)")

    torch.set_num_threads(1)
    rnn = MDNRNN(hps_sample).requires_grad_(False)
    z, a = np.random.randn(32).astype(np.float32), np.random.uniform(-1, 1, 3).astype(np.float32)
    state = rnn_init_state(rnn)
    x1, s1 = torch.randn(1, 35), rnn.initial_state(1)
    x64, s64 = torch.randn(64, 35), rnn.initial_state(64)
    with torch.inference_mode():
        hot = microseconds(lambda: rnn_next_state(rnn, z, a, state), 3000)
        torch1 = microseconds(lambda: rnn.step(x1, s1), 3000)
        torch64 = microseconds(lambda: rnn.step(x64, s64), 500)
    print("acting, 1 thread:")
    print(f"  rnn_next_state (numpy, batch 1): {hot:8.1f} us/call")
    print(f"  rnn.step (torch, batch 1)      : {torch1:8.1f} us/call")
    print(f"  rnn.step (torch, batch 64)     : {torch64 / 64:8.1f} us/env ({torch64:.0f} us/call)")


if __name__ == "__main__":
    main()
