"""torch's process-wide switches, set by each entry script for its own kind of work.

They change results, not only speed: a trainer run in a process where an agent had set them
(oneDNN off) wrote an rnn.json one byte away from a fresh process's. So every script that
acts or trains sets all of them itself, whatever ran before it in the process.
"""
import torch


def set_torch_for_acting(envs_per_worker):
    """A process that acts (model.py, train.py's workers, extract.py's agent, the report, ...):
    one thread; denormals flushed to zero, as TF's CPU kernels do (the original's random V, with
    weights ~1e-6, gives denormal activations on which CPU convolutions run ~50x slower); and
    oneDNN only for batched encodes: at batch 1 torch's own kernels are ~3x faster (~0.8 ms
    against ~2.4 ms), from batch 4 oneDNN is (~0.48 ms a frame at 8)."""
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    torch.backends.mkldnn.enabled = envs_per_worker > 1


def set_torch_for_training(threads=0):
    """vae_train.py, series.py and rnn_train.py: torch's own defaults (oneDNN on, denormals kept)
    and `threads` CPU threads (0 = torch's default, one per core)."""
    torch.backends.mkldnn.enabled = True
    torch.set_flush_denormal(False)
    if threads:
        torch.set_num_threads(threads)
