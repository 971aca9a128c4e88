"""tfjson.py and atomic.py: the original's weight JSON bytes, validation, atomic writes."""
import json
import os

import numpy as np
import pytest

from files import atomic, tfjson
from plumbing.cli import UserError

RNN_SHAPES = [(256, 480), (480,), (291, 1024), (1024,)]


def original_writer(path, arrays):
    """The original's save_json, written out independently: round(w*1e4) ints, its dump options."""
    ints = [np.round(np.asarray(a) * 10000).astype(int).tolist() for a in arrays]
    with open(path, "wt") as f:
        json.dump(ints, f, sort_keys=True, indent=0, separators=(",", ": "))


def test_round_trip_is_byte_identical(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.normal(0, 0.3, s) for s in [(4, 4, 3, 2), (2,), (5, 7)]]
    original_writer(tmp_path / "a.json", arrays)
    loaded = tfjson.load(tmp_path / "a.json", [a.shape for a in arrays])
    assert all(x.dtype == np.float32 for x in loaded)
    assert all(np.abs(x - a).max() <= 0.5e-4 + 1e-7 for x, a in zip(loaded, arrays))
    tfjson.save(tmp_path / "b.json", loaded)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_the_original_rnn_json_round_trips_byte_for_byte(tf_models, tmp_path):
    src = tf_models / "rnn" / "rnn.json"
    arrays = tfjson.load(src, RNN_SHAPES)
    tfjson.save(tmp_path / "rnn.json", arrays)
    assert (tmp_path / "rnn.json").read_bytes() == src.read_bytes()
    # check values from the spec: LSTM bias block means (x1e-4) i 375.3, j 7.0, f 36.6, o 783.5
    means = arrays[3].reshape(4, 256).astype(np.float64).mean(axis=1) * 1e4
    assert np.allclose(means, [375.3, 7.0, 36.6, 783.5], atol=0.05)


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("not json", "not a weight JSON file"),
    ("[[1, 2], [3]]", "expected a list of 4 weight arrays, found 2"),
    ('{"a": 1}', "expected a list of weight arrays, found dict"),
    ("[[1], [2], [3], [4]]", "array 0 has shape (1,), expected (256, 480)"),
    ("[[[1, 2], [3]], [2], [3], [4]]", "array 0 is not a rectangular array"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "w.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError) as e:
        tfjson.load(path, RNN_SHAPES)
    assert str(e.value).startswith(str(path)) and message in str(e.value)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "out.npz"
    atomic.save_npz(target, x=np.arange(3))

    class Boom:
        def __array__(self, *a, **k):
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic.save_npz(target, x=Boom())
    assert np.load(target)["x"].tolist() == [0, 1, 2]
    assert os.listdir(tmp_path) == ["out.npz"]  # no temp file left behind


def test_unwritable_folder_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write here"):
        atomic.check_writable(blocker / "sub")
    with pytest.raises(UserError, match="cannot write here"):
        atomic.save_json(blocker / "sub" / "x.json", [1])


def test_atomic_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    atomic.save_json(tmp_path / "x.json", [1])
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_dumps_equals_json_dumps_and_quantizes_float32_in_float32():
    rng = np.random.default_rng(1)
    arrays = [rng.normal(0, 0.5, s).astype(np.float32) for s in [(3, 2, 2), (0,), (4,), (2, 0)]]
    # the original: np.round(p * 10000) on float32 variables, dumped with its json options
    expected = json.dumps([np.round(a * np.float32(10000)).astype(int).tolist() for a in arrays],
                          sort_keys=True, indent=0, separators=(",", ": "))
    assert tfjson.dumps(tfjson.quantize(arrays)) == expected
    assert tfjson.dumps([]) == json.dumps([], indent=0)
    # a float32 weight whose float64 rounding differs (x.5 boundary): the float32 rule wins
    w = np.float32(0.00012345)
    assert tfjson.quantize([np.array([w])])[0][0] == np.round(w * np.float32(10000))
