"""files/es_state.py: every optimizer of train.py, saved as plain arrays at any generation and
restored into one built afresh, samples bit for bit what the unbroken optimizer samples; a field
that fails its check is refused in one line before anything is assigned."""
import numpy as np
import pytest

import es as E
from files import es_state
from plumbing.cli import UserError

N = 12


def make(kind, pop, rule="csa"):
    if kind == "cma":
        return E.CMAES(N, sigma_init=0.1, popsize=pop, weight_decay=0.01, sigma_adaptation=rule)
    if kind == "ga":
        return E.SimpleGA(N, popsize=pop, elite_ratio=0.25, sigma_decay=0.99)
    if kind == "openes":
        return E.OpenES(N, popsize=pop, antithetic=True)
    return E.PEPG(N, popsize=pop)


def trajectory(kind, pop, rule, break_at=None, generations=9):
    """Every generation's candidates and (mean, step size, best) of a noisy quadratic, with the
    optimizer saved and rebuilt (from other seeds) before generation `break_at`."""
    np.random.seed(1)
    es = make(kind, pop, rule)
    np.random.seed(2)
    out = []
    for g in range(generations):
        if g == break_at:
            arrays, rng = es_state.arrays_of(es), np.random.get_state()
            np.random.seed(99)  # a fresh optimizer from other random numbers: only the arrays carry over
            es = make(kind, pop, rule)
            es_state.restore(es, {k: v.copy() for k, v in arrays.items()}, "ckpt")
            np.random.set_state(rng)
        x = es.ask()
        es.tell(-np.sum((x - 0.3) ** 2, axis=1) + 0.1 * np.random.randn(len(x)))
        out += [x.copy(), np.array(es.current_param()), np.array(es.rms_stdev()), np.array(es.result()[0]),
                np.array(es.result()[1])]
    return out


@pytest.mark.parametrize("kind,pop,rule", [("cma", 3, "csa"), ("cma", 4, "csa"), ("cma", 4, "tpa"), ("cma", 5, "tpa"),
                                           ("cma", 8, "csa"), ("cma", 16, "tpa"), ("ga", 8, None),
                                           ("openes", 8, None), ("pepg", 8, None)])
def test_a_restored_optimizer_continues_bit_for_bit(kind, pop, rule):
    """CMA with pycma's mirrored samples (population < 6), TPA's injected directions and CSA."""
    unbroken = trajectory(kind, pop, rule)
    for break_at in (1, 4):
        assert all(np.array_equal(a, b) for a, b in zip(unbroken, trajectory(kind, pop, rule, break_at))), break_at


def saved_cma():
    np.random.seed(0)
    es = make("cma", 8)
    es.tell(np.random.randn(len(es.ask())))
    return es_state.arrays_of(es)


@pytest.mark.parametrize("field,value,message", [
    ("es.mean", np.zeros(N + 1), r"es.mean has shape \(13,\), expected \(12,\)"),
    ("es.mean", np.full(N, np.nan), "es.mean holds values that are not finite"),
    ("es.mean", np.zeros(N, dtype=np.float32), "es.mean is float32, expected float64"),
    ("es.sigma", np.array(-1.0), r"es.sigma holds values outside \[1e-300, inf\]"),
    ("es.countiter", np.array(1.5), "es.countiter is float64, expected int64"),
    ("es.fit.idx", np.full(8, 9, dtype=np.int64), r"es.fit.idx holds values outside \[0, 8\]"),
    ("es.pop_injection_directions", np.zeros((9, N)), r"es.pop_injection_directions has shape \(9, 12\), expected up to 8 rows"),
    ("es.opts", np.zeros(1), "es.opts is not one of CMAES's"),
])
def test_a_bad_field_is_refused_before_anything_is_assigned(field, value, message):
    arrays = saved_cma()
    arrays[field] = value
    es = make("cma", 8)
    mean, sigma = es.es.mean.copy(), es.es.sigma
    with pytest.raises(UserError, match=f"^ckpt: optimizer field {message}"):
        es_state.restore(es, arrays, "ckpt")
    assert np.array_equal(es.es.mean, mean) and es.es.sigma == sigma  # nothing assigned


def test_a_missing_field_is_refused():
    arrays = saved_cma()
    del arrays["es.sm.C"]
    with pytest.raises(UserError, match="^ckpt: optimizer field es.sm.C is missing$"):
        es_state.restore(make("cma", 8), arrays, "ckpt")


def test_only_plain_arrays_are_saved():
    for kind in ("cma", "ga", "openes", "pepg"):
        np.random.seed(0)
        es = make(kind, 8)
        es.tell(np.random.randn(len(es.ask())))
        arrays = es_state.arrays_of(es)
        assert arrays and all(isinstance(a, np.ndarray) and a.dtype.kind in "fib" for a in arrays.values()), kind
