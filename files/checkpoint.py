"""Resumable checkpoints of the three trainers (vae_train.py, rnn_train.py, train.py).

A checkpoint is one dict per trainer, as nanoGPT's: `kind` (which trainer wrote it),
`settings` (what a resumed run must share with the run it continues) and the trainer's own
state (tensors and plain values). `save` writes it atomically; `load` reads it with
`torch.load(weights_only=True)`, which runs no code from the file, so a checkpoint from
someone else cannot execute anything on load. numpy arrays therefore travel as tensors, and
numpy's RandomState as a dict (`np_random_state`).

The one exception is train.py's optimizer: pycma's strategy object has no plain-value form,
so it travels as pickled bytes (`dump_strategy`). `load_strategy` unpickles them with an
allow-list: exactly the pycma, numpy and es.py classes such an object holds, created without
calling them, and a handful of numpy constructors; anything else (a crafted pickle that would
run a command) is refused with one line naming the file, before anything runs.
"""
import io
import pickle
import warnings

import numpy as np
import torch
from numpy._core import multiarray, numeric

from files import atomic
from plumbing.cli import UserError


def save(path, kind, settings, **state):
    """Atomically write the checkpoint of trainer `kind` at `path`."""
    atomic.save_torch(path, dict(kind=kind, settings=settings, **state))


def load(path, kind, settings, before=None):
    """The state saved by `save(path, kind, ...)`, or a one-line UserError: no file, a damaged or
    foreign file, or `settings` that differ from those it was written with. `before` holds the
    values of settings added since checkpoints were first written (config.before_options), which
    a checkpoint that lacks them ran with."""
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
    saved = {**{k: v for k, v in (before or {}).items() if k in settings}, **state.get("settings", {})}
    changed = [k for k in sorted(set(settings) | set(saved)) if saved.get(k, _ABSENT) != settings.get(k, _ABSENT)]
    if changed:
        was = "; ".join(f"{k} {_short(saved, k)} there, {_short(settings, k)} now" for k in changed)
        raise UserError(f"{path}: written with other settings ({was}); resume needs the same ones")
    return state


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
    """Load what `save_training` wrote into model, optimizer and generators; returns the position.
    `before`: as for `load`."""
    state = load(path, kind, settings, before)
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


# --- the optimizer's pickle ----------------------------------------------------------------------

# Classes an optimizer of es.py holds (pycma 4.5.0's CMAEvolutionStrategy and its parts, found by
# pickling every optimizer at populations 3 to 128): only instantiated through __new__ and filled
# with their pickled state, never called. (pycma evaluates string options later only through its
# own safe_str, which admits none but its default words.)
STRATEGY_CLASSES = {
    "cma.boundary_handler": ("BoundNone", "BoundTransform"),
    "cma.evolution_strategy": ("CMAEvolutionStrategy", "_CMASolutionDict_empty", "_CMASolutionDict_functional",
                               "_CMAStopDict", "_StopTolXStagnation"),
    "cma.logger": ("CMADataLogger",),
    "cma.optimization_tools": ("BestSolution",),
    "cma.options_parameters": ("CMAOptions", "CMAParameters"),
    "cma.recombination_weights": ("RecombinationWeights",),
    "cma.sampler": ("GaussFullSampler",),
    "cma.sigma_adaptation": ("CMAAdaptSigmaCSA", "CMAAdaptSigmaTPA", "_TPAParameters"),
    "cma.transformations": ("DiagonalDecoding", "GenoPheno", "RoundIntegerVariables"),
    "cma.utilities.utils": ("BlancClass", "DictFromTagsInString", "ElapsedWCTime", "MoreToWrite", "SolutionDict"),
    "es": ("Adam", "CMAES", "OpenES", "PEPG", "SimpleGA"),
    "numpy": ("dtype", "ndarray"),
}
# Functions a strategy refers to as values (pycma's defaults), never called while loading.
STRATEGY_FUNCTIONS = {("cma.evolution_strategy", "_pass"), ("cma.options_parameters", "is_feasible"),
                      ("numpy.linalg", "eigh")}
# The global RNG, pickled by reference: the function's module is train.py's name when it ran as a
# script (checkpoints written before this module held it), this module's at the root (before it
# moved into files/) or its own.
GLOBAL_RNG_NAMES = {("__main__", "_global_rng"), ("train", "_global_rng"), ("checkpoint", "_global_rng"),
                    (__name__, "_global_rng")}


def _global_rng():
    return np.random.mtrand._rand


def _rng_method(rng, name):
    """The one bound method a strategy holds: pycma's sampler keeps the global RNG's randn."""
    if rng is not np.random.mtrand._rand or name != "randn":
        raise pickle.UnpicklingError(f"getattr({type(rng).__name__}, {name!r}) is not allowed")
    return rng.randn


class _GlobalRNGPickler(pickle.Pickler):
    """Pickles numpy's global RandomState as a reference, so a restored pycma object samples from
    the live global generator (whose state is saved separately) and not from a private copy."""

    def reducer_override(self, obj):
        if obj is np.random.mtrand._rand:
            return _global_rng, ()
        return NotImplemented


class _StrategyUnpickler(pickle._Unpickler):
    """Python's own unpickler, restricted: names from the allow-lists only; calls (REDUCE) only to
    numpy's array and scalar constructors, the global RNG and its randn; instances only through
    __new__ of an allowed class (NEWOBJ); the old protocols' class calls (INST, OBJ) refused."""

    def find_class(self, module, name):
        if (module, name) in GLOBAL_RNG_NAMES:
            return _global_rng
        if (module, name) == ("builtins", "getattr"):
            return _rng_method
        if name in STRATEGY_CLASSES.get(module, ()) or (module, name) in STRATEGY_FUNCTIONS or \
                (module, name) in _CALLABLE_NAMES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed")

    def load_reduce(self):
        func = self.stack[-2]
        if func not in _calls():
            raise pickle.UnpicklingError(f"calling {getattr(func, '__qualname__', type(func).__name__)} is not allowed")
        super().load_reduce()

    def load_newobj(self):
        if not _is_allowed_class(self.stack[-2]):
            raise pickle.UnpicklingError("creating this object is not allowed")
        super().load_newobj()

    def refuse(self):
        raise pickle.UnpicklingError("protocol 0/1 object creation is not allowed")

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    for _opcode in (pickle.INST, pickle.OBJ, pickle.NEWOBJ_EX):
        dispatch[_opcode[0]] = refuse


_CALLABLE_NAMES = {("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
                ("numpy._core.numeric", "_frombuffer"), ("builtins", "range")}


def _calls():
    return (multiarray._reconstruct, multiarray.scalar, numeric._frombuffer, np.dtype, range, _global_rng, _rng_method)


def _is_allowed_class(cls):
    return isinstance(cls, type) and cls.__name__ in STRATEGY_CLASSES.get(cls.__module__, ())


def dump_strategy(es):
    """An optimizer of es.py as pickled bytes, the global RNG by reference."""
    buf = io.BytesIO()
    _GlobalRNGPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(es)
    return buf.getvalue()


def load_strategy(data, path):
    """The optimizer `dump_strategy` pickled, or a one-line UserError naming checkpoint `path`
    when the bytes hold anything outside the allow-list (nothing of theirs runs)."""
    try:
        return _StrategyUnpickler(io.BytesIO(data)).load()
    except Exception as e:  # a refused name or call, or damaged bytes
        raise UserError(f"{path}: not a checkpoint of train.py (its optimizer: {e})") from None
