"""Resumable checkpoints of the torch trainers (vae_train.py, rnn_train.py).

A checkpoint is one dict per trainer, as nanoGPT's: `kind` (which trainer wrote it),
`settings` (what a resumed run must share with the run it continues) and the trainer's own
state (tensors and plain values). `save` writes it atomically; `load` reads it with
`torch.load(weights_only=True)`, which runs no code from the file, so a checkpoint from
someone else cannot execute anything on load; before that, the file's size and its zip entries
are held to what the trainer's model can fill (`max_bytes`), so a crafted file cannot make the
loader allocate more than that.

train.py's checkpoint, which holds an optimizer, has a format of its own
(files/train_checkpoint.py); the rule for comparing settings is shared (`compare_settings`).
"""
import os
import pickle
import warnings
import zipfile

import torch

from files import atomic
from plumbing.cli import UserError


def save(path, kind, settings, **state):
    """Atomically write the checkpoint of trainer `kind` at `path`."""
    atomic.save_torch(path, dict(kind=kind, settings=settings, **state))


def load(path, kind, settings, before=None, max_bytes=1 << 30):
    """The state saved by `save(path, kind, ...)`, or a one-line UserError: no file, a damaged or
    foreign file, one larger than `max_bytes` or with compressed entries (torch writes none), or
    `settings` that differ from those it was written with. `before` holds the values of settings
    added since checkpoints were first written (config.before_options), which a checkpoint that
    lacks them ran with."""
    _check_container(path, kind, max_bytes)
    try:
        with warnings.catch_warnings():  # torch warns about a foreign pickle before refusing it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(f"{path}: not a checkpoint of {kind} (it holds objects other than tensors and plain values, "
                        "which could run code when loaded)") from None
    except Exception as e:  # torch.load raises many types for a damaged or foreign file
        reason = (str(e).strip().splitlines() or [""])[0][:160]
        raise UserError(f"{path}: not a checkpoint of {kind} ({type(e).__name__}: {reason})") from None
    if not isinstance(state, dict) or state.get("kind") != kind or not isinstance(state.get("settings", {}), dict):
        raise UserError(f"{path}: not a checkpoint of {kind}")
    compare_settings(path, state.get("settings", {}), settings, before)
    return state


def _check_container(path, kind, max_bytes):
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder, expected a checkpoint of {kind}")
    if not os.path.exists(path):
        raise UserError(f"{path}: no checkpoint to resume from (run without --resume to start)")
    if os.path.getsize(path) > max_bytes:
        raise UserError(f"{path}: {os.path.getsize(path)} bytes, more than a checkpoint of {kind} for this model "
                        f"takes ({max_bytes})")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                packed = [i.filename for i in z.infolist() if i.compress_type != zipfile.ZIP_STORED]
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise UserError(f"{path}: not a checkpoint of {kind} ({e})") from None
        if packed:
            raise UserError(f"{path}: not a checkpoint of {kind} (a compressed entry {packed[0]!r}, which torch "
                            "never writes)")


def compare_settings(path, saved, settings, before=None):
    """A one-line UserError naming checkpoint `path` when its `saved` settings differ from
    `settings`; a setting it lacks counts as its `before` value (see `load`)."""
    saved = {**{k: v for k, v in (before or {}).items() if k in settings}, **saved}
    changed = [k for k in sorted(set(settings) | set(saved)) if saved.get(k, _ABSENT) != settings.get(k, _ABSENT)]
    if changed:
        was = "; ".join(f"{k} {_short(saved, k)} there, {_short(settings, k)} now" for k in changed)
        raise UserError(f"{path}: written with other settings ({was}); resume needs the same ones")


_ABSENT = object()


def _short(settings, key):
    if key not in settings:
        return "absent"
    text = repr(settings[key])
    return text if len(text) <= 40 else text[:37] + "..."


def save_training(path, kind, settings, model, optimizer, generator, **position):
    """The checkpoint of a torch trainer: model, optimizer, its torch.Generator, torch's global RNG,
    and where training stands (`position`: step, epoch, ...)."""
    save(path, kind, settings, model=model.state_dict(), optimizer=optimizer.state_dict(),
         generator=generator.get_state(), torch_rng=torch.get_rng_state(), **position)


def restore_training(path, kind, settings, before, model, optimizer, generator):
    """Load what `save_training` wrote into model, optimizer and generators; returns the position
    (non-negative integers). `before`: as for `load`. A file larger than the model, its Adam
    moments and the settings can fill, or whose tensors do not fit the model, is one line."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    state = load(path, kind, settings, before, max_bytes=4 * weights + len(repr(settings)) * 2 + (1 << 20))
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for p in model.parameters():  # Adam's moments: the parameter's shape, finite like the weights
            tensors = [p] + [v for v in optimizer.state.get(p, {}).values() if torch.is_tensor(v) and v.numel() > 1]
            if any(v.shape != p.shape or not bool(torch.isfinite(v).all()) for v in tensors):
                raise ValueError("weights or Adam's moments of another shape or not finite")
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        reason = (str(e).strip().splitlines() or [""])[0][:160]
        raise UserError(f"{path}: its tensors do not fit this model ({type(e).__name__}: {reason})") from None
    position = {k: v for k, v in state.items() if k not in ("kind", "settings", "model", "optimizer", "generator",
                                                            "torch_rng")}
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**62 for v in position.values()):
        raise UserError(f"{path}: its position ({', '.join(position)}) is not non-negative integers")
    return position
