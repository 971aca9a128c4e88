"""An optimizer of es.py as plain arrays, and back: what train.py's checkpoint holds of it.

`arrays_of(es)` lists the fields that carry an optimizer from one generation to the next (for
CMAES, those of pycma's strategy object that its next `ask` and `tell` read) as numpy arrays of
float64, int64 or bool. `restore(es, arrays, where)` assigns them to an optimizer that train.py
built afresh from the run's own settings, after checking each one: its dtype, its shape against
the optimizer's parameter count and population, finite values, and its range. Nothing else of
a saved file reaches the optimizer: no option, path, string or object, so a crafted checkpoint
can at worst move the search, never make it run, read or write anything.

What is left out is pycma's record of the run for its termination criteria and its logger
(fitness histories, timers), which train.py never consults: `es.stop()` after a resume sees a
shorter history than the unbroken run's. Everything `ask`, `tell` and `result` use is kept, so
a resumed run samples bit for bit what the unbroken one would (tests/test_es_state.py).
"""
import math

import numpy as np

from plumbing.cli import UserError

# A field: (attribute path from the optimizer, kind, shape, lower bound, upper bound, required).
# kind: f = float64, i = int64 (restored as int), b = bool, r = range (two ints), l = list of
# float64 rows, L = list of bools. Shapes name n (parameters), p (population), e (elites), k (up
# to the population) or numbers. A field that some settings never create (TPA's, mirrors') is
# optional: absent in the file, it stays as the fresh optimizer has it.
INF = math.inf
_PYCMA = [
    ("es.mean", "f", ("n",), -INF, INF, True),
    ("es.mean_after_tell", "f", ("n",), -INF, INF, True),
    ("es.mean_old", "f", ("n",), -INF, INF, True),
    ("es.mean_old_old", "f", ("n",), -INF, INF, False),
    ("es.pc", "f", ("n",), -INF, INF, True),
    ("es.pc2", "f", ("n",), -INF, INF, False),
    ("es.dC", "f", ("n",), 0.0, INF, True),
    ("es.sigma", "f", (), 1e-300, INF, True),
    ("es._sigma_old", "f", (), 1e-300, INF, False),
    ("es._isotropic_mean_shift", "f", ("n",), -INF, INF, False),
    ("es._isotropic_mean_shift_iteration", "i", (), -1, 2**62, True),
    ("es.countiter", "i", (), 0, 2**62, True),
    ("es.countevals", "i", (), 0, 2**62, True),
    ("es.itereigenupdated", "i", (), 0, 2**62, True),
    ("es.number_of_injections", "i", (), 0, "p", False),
    ("es.number_of_injections_delivered", "i", (), 0, "p", True),
    ("es._mirrormethod1_done", "i", (), 0, 2**62, False),
    ("es.pop_injection_directions", "l", ("k", "n"), -INF, INF, True),
    ("es._is_independent_sample", "L", ("k",), 0, 1, True),
    ("es._indices_of_selective_mirrors", "r", (2,), 0, "p", False),
    ("es.pop_sorted", "f", ("p", "n"), -INF, INF, False),
    ("es.pop", "l", ("k", "n"), -INF, INF, False),
    ("es.ary", "f", ("p", "n"), -INF, INF, False),
    ("es.sm.C", "f", ("n", "n"), -INF, INF, True),
    ("es.sm.B", "f", ("n", "n"), -INF, INF, True),
    ("es.sm.D", "f", ("n",), 0.0, INF, True),
    ("es.sm.count_tell", "i", (), 0, 2**62, True),
    ("es.sm.count_eigen", "i", (), 0, 2**62, True),
    ("es.sm.last_update", "i", (), 0, 2**62, True),
    ("es.sm._corr_condition", "f", (), 0.0, INF, True),
    ("es.sm._corr_condition_count_eigen", "i", (), 0, 2**62, True),
    ("es.sm._beta_diagonal_acceleration", "f", (), 0.0, INF, True),
    ("es.adapt_sigma.ps", "f", ("n",), -INF, INF, False),
    ("es.adapt_sigma.delta", "f", (), 0.0, INF, True),
    ("es.adapt_sigma._ps_updated_iteration", "i", (), -1, 2**62, False),
    ("es.adapt_sigma._last_multiplier", "f", (), 0.0, INF, False),
    ("es.adapt_sigma.s", "f", (), -INF, INF, False),
    ("es.adapt_sigma._last_z", "f", (), -INF, INF, False),
    ("es.adapt_sigma.cs", "f", (), 0.0, 1.0, False),
    ("es.adapt_sigma.is_initialized_base", "b", (), 0, 1, False),
    ("es.fit.fit", "f", ("p",), -INF, INF, True),
    ("es.fit.idx", "i", ("p",), 0, "p", True),
    ("es.fit.median", "f", (), -INF, INF, True),
    ("es.fit.median0", "f", (), -INF, INF, True),
    ("es.fit.median_min", "f", (), -INF, INF, True),
    ("es.fit.median_previous", "f", (), -INF, INF, True),
    ("es.fit.median_got_worse", "i", (), 0, 2**62, True),
    ("es.best.x", "f", ("n",), -INF, INF, True),
    ("es.best.x_geno", "f", ("n",), -INF, INF, False),
    ("es.best.f", "f", (), -INF, INF, True),
    ("es.best.evals", "i", (), 0, 2**62, True),
    ("es.best.evalsall", "i", (), 0, 2**62, True),
    ("es.best.compared", "i", (), 0, 2**62, True),
    ("es.best.last.x", "f", ("n",), -INF, INF, True),
    ("es.best.last.f", "f", (), -INF, INF, True),
    ("es.sent_solutions.last_iteration", "i", (), 0, 2**62, True),
    ("es.sent_solutions.last_solution_index", "i", (), 0, 2**62, True),
]
_MEAN_SEARCH = [  # OpenES and PEPG: a mean moved by Adam
    ("mu", "f", ("n",), -INF, INF, True),
    ("best_mu", "f", ("n",), -INF, INF, True),
    ("curr_best_mu", "f", ("n",), -INF, INF, True),
    ("best_reward", "f", (), -INF, INF, True),
    ("curr_best_reward", "f", (), -INF, INF, True),
    ("first_interation", "b", (), 0, 1, True),  # sic: the original's spelling
    ("learning_rate", "f", (), 0.0, INF, True),
    ("optimizer.m", "f", ("n",), -INF, INF, True),
    ("optimizer.v", "f", ("n",), 0.0, INF, True),
    ("optimizer.t", "i", (), 0, 2**62, True),
    ("optimizer.stepsize", "f", (), 0.0, INF, True),
]
FIELDS = {
    "CMAES": _PYCMA,
    "SimpleGA": [
        ("sigma", "f", (), 0.0, INF, True),
        ("elite_params", "f", ("e", "n"), -INF, INF, True),
        ("elite_rewards", "f", ("e",), -INF, INF, True),
        ("best_param", "f", ("n",), -INF, INF, True),
        ("best_reward", "f", (), -INF, INF, True),
        ("curr_best_reward", "f", (), -INF, INF, True),
        ("first_iteration", "b", (), 0, 1, True),
    ],
    "OpenES": _MEAN_SEARCH + [("sigma", "f", (), 0.0, INF, True)],
    "PEPG": _MEAN_SEARCH + [("sigma", "f", ("n",), 0.0, INF, True)],
}
DTYPES = {"f": np.float64, "i": np.int64, "b": np.bool_, "r": np.int64, "l": np.float64, "L": np.bool_}


def fields_of(es):
    return FIELDS[type(es).__name__]


def _get(obj, path):
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def _set(obj, path, value):
    *parents, name = path.split(".")
    for parent in parents:
        obj = getattr(obj, parent)
    setattr(obj, name, value)


def _has(obj, path):
    try:
        _get(obj, path)
        return True
    except AttributeError:
        return False


def arrays_of(es):
    """{field path: numpy array} of optimizer `es`, the fields it has now."""
    out = {}
    for path, kind, shape, *_ in fields_of(es):
        if not _has(es, path) or _get(es, path) is None:
            continue
        value = _get(es, path)
        if kind == "r":
            value = [value.start, value.stop]
        elif kind == "l":
            value = np.reshape(np.array(value, dtype=np.float64), (len(value), es.num_params))
        out[path] = np.array(value, dtype=DTYPES[kind])
    return out


def sizes(es):
    """{symbol: value} of the shapes' symbols for optimizer `es`."""
    return dict(n=es.num_params, p=es.popsize, e=getattr(es, "elite_popsize", 0))


def dims(shape, s):
    """A field's shape in numbers, its symbols replaced from `sizes` (k: at most the population)."""
    return tuple(s.get(d, s["p"] if d == "k" else d) for d in shape)


def max_bytes(es):
    """{field path: the most bytes its array can take} for optimizer `es` (a file's bound)."""
    s = sizes(es)
    return {path: int(np.prod(dims(shape, s), dtype=np.int64)) * np.dtype(DTYPES[kind]).itemsize
            for path, kind, shape, *_ in fields_of(es)}


def _checked(field, value, s, where):
    """`value` as the Python value of `field` (a row of FIELDS), or a one-line UserError naming
    `where` and the field."""
    path, kind, shape, low, high, _ = field
    def bad(why):
        return UserError(f"{where}: optimizer field {path} {why}")
    if not isinstance(value, np.ndarray) or value.dtype != np.dtype(DTYPES[kind]):
        raise bad(f"is {getattr(value, 'dtype', type(value).__name__)}, expected {np.dtype(DTYPES[kind])}")
    high = s["p"] if high == "p" else high
    expected = dims(shape, s)
    if kind in "lL":  # up to the population's rows
        if value.ndim != len(shape) or value.shape[0] > s["p"] or value.shape[1:] != expected[1:]:
            raise bad(f"has shape {value.shape}, expected up to {s['p']} rows of shape {expected[1:]}")
    elif value.shape != expected:
        raise bad(f"has shape {value.shape}, expected {expected}")
    if kind in "fl" and not np.all(np.isfinite(value)):
        raise bad("holds values that are not finite")
    if value.size and (value.min() < low or value.max() > high):
        raise bad(f"holds values outside [{low}, {high}]")
    if kind == "r":
        return range(int(value[0]), int(value[1]))
    if kind == "l":
        return [row.copy() for row in value]
    if kind == "L":
        return [bool(v) for v in value]
    if shape == ():
        return {"f": float, "i": int, "b": bool}[kind](value)
    return value.copy(order="K")  # the memory order too: BLAS rounds a transposed product differently


def restore(es, arrays, where):
    """Assign the checked `arrays` (from `arrays_of`) to `es`, built afresh with the run's settings.
    A missing required field, an unknown one, or any value that fails its check is a one-line
    UserError naming `where` (the checkpoint) before anything is assigned."""
    fields = {f[0]: f for f in fields_of(es)}
    unknown = sorted(set(arrays) - set(fields))
    if unknown:
        raise UserError(f"{where}: optimizer field {unknown[0]} is not one of {type(es).__name__}'s")
    missing = [p for p, f in fields.items() if f[5] and p not in arrays]
    if missing:
        raise UserError(f"{where}: optimizer field {missing[0]} is missing")
    s = sizes(es)
    values = {p: _checked(fields[p], a, s, where) for p, a in arrays.items()}
    for path, value in values.items():
        _set(es, path, value)
    if type(es).__name__ == "CMAES":
        from cma.utilities.utils import ElapsedWCTime

        # pycma's strategy reads its sampler's matrices under these names too, and starts the
        # timer it ticks at each ask on its first one only
        es.es.C, es.es.B, es.es.D = es.es.sm.C, es.es.sm.B, es.es.sm.D
        es.es.timer = ElapsedWCTime()
