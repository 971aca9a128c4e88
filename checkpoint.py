"""Resumable checkpoints of the three trainers (vae_train.py, rnn_train.py, train.py).

A checkpoint is one dict per trainer, as nanoGPT's: `kind` (which trainer wrote it),
`settings` (what a resumed run must share with the run it continues) and the trainer's own
state (tensors and plain values). `save` writes it atomically; `load` reads it with
`torch.load(weights_only=True)`, which runs no code from the file, so a checkpoint from
someone else cannot execute anything on load. numpy arrays therefore travel as tensors, and
numpy's RandomState as a dict (`np_random_state`).

The one exception is train.py's optimizer: pycma's strategy object has no plain-value form,
so train.py stores it as pickled bytes and unpickles them itself (see train.py).
"""
import pickle
import warnings

import numpy as np
import torch

import atomic
from cli import UserError


def save(path, kind, settings, **state):
    """Atomically write the checkpoint of trainer `kind` at `path`."""
    atomic.save_torch(path, dict(kind=kind, settings=settings, **state))


def load(path, kind, settings):
    """The state saved by `save(path, kind, ...)`, or a one-line UserError: no file, a damaged or
    foreign file, or `settings` that differ from those it was written with."""
    try:
        with warnings.catch_warnings():  # torch warns about a foreign pickle before refusing it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: no checkpoint to resume from (run without --resume to start)") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected a checkpoint of {kind}") from None
    except pickle.UnpicklingError:
        raise UserError(f"{path}: not a checkpoint of {kind} (it holds objects other than tensors and plain values, "
                        "which could run code when loaded)") from None
    except Exception as e:  # torch.load raises many types for a damaged or foreign file
        reason = (str(e).strip().splitlines() or [""])[0][:160]
        raise UserError(f"{path}: not a checkpoint of {kind} ({type(e).__name__}: {reason})") from None
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise UserError(f"{path}: not a checkpoint of {kind}")
    saved = state.get("settings", {})
    changed = [k for k in sorted(set(settings) | set(saved)) if saved.get(k) != settings.get(k)]
    if changed:
        was = "; ".join(f"{k} {_short(saved.get(k))} there, {_short(settings.get(k))} now" for k in changed)
        raise UserError(f"{path}: written with other settings ({was}); resume needs the same ones")
    return state


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def save_training(path, kind, settings, model, optimizer, generator, **position):
    """The checkpoint of a torch trainer: model, optimizer, its torch.Generator, torch's global RNG,
    and where training stands (`position`: step, epoch, ...)."""
    save(path, kind, settings, model=model.state_dict(), optimizer=optimizer.state_dict(),
         generator=generator.get_state(), torch_rng=torch.get_rng_state(), **position)


def restore_training(path, kind, settings, model, optimizer, generator):
    """Load what `save_training` wrote into model, optimizer and generators; returns the position."""
    state = load(path, kind, settings)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    return {k: v for k, v in state.items() if k not in ("kind", "settings", "model", "optimizer", "generator",
                                                         "torch_rng")}


def np_random_state():
    """numpy's global RandomState as plain values."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return dict(name=name, keys=torch.from_numpy(keys.copy()), pos=int(pos), has_gauss=int(has_gauss), cached=float(cached))


def set_np_random_state(s):
    np.random.set_state((s["name"], s["keys"].numpy(), s["pos"], s["has_gauss"], s["cached"]))
