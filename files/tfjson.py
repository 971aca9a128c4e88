"""The original's JSON files: `read` for any of them (vae.json, rnn.json, initial_z.json, a
controller), the quantized weight format shared by the VAE (vae.json) and the MDN-RNN
(rnn.json), and initial_z.json (`save_initial_z`, `load_initial_z`).

A file is one JSON list holding one nested list per TF trainable variable, in creation order
and TF layout, each value stored as the integer round(weight * 10000). The original writes it
with `json.dump(..., sort_keys=True, indent=0, separators=(',', ': '))`: every number and
bracket on its own line, no indentation, no trailing newline. `save` reproduces those bytes;
`load` checks the count and every shape and names the file in any error.
"""
import numpy as np

from files import atomic, json_data
from plumbing.cli import UserError

SCALE = 10000.0
MAX_BYTES = 1 << 26  # 64 MiB: three times the paper's vae.json, the largest of these files


def quantize(arrays):
    """The original's `np.round(p * 10000).astype(int)` per array, computed in the array's own
    float precision as TF did on its float32 variables (float64 rounding gives other integers
    for about 17 in a million float32 weights). Returns int64 arrays."""
    out = []
    for a in arrays:
        a = np.asarray(a)
        if not np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float64)
        out.append(np.round(a * a.dtype.type(SCALE)).astype(np.int64))
    return out


def dumps(ints):
    """What `json.dumps([a.tolist() for a in ints], sort_keys=True, indent=0, separators=(',', ': '))`
    returns, written directly: several times faster and without the nested Python lists."""
    def nested(a):
        if len(a) == 0:
            return "[]"
        if a.ndim == 1:
            return "[\n" + ",\n".join(map(str, a.tolist())) + "\n]"
        return "[\n" + ",\n".join(nested(x) for x in a) + "\n]"

    return "[\n" + ",\n".join(nested(a) for a in ints) + "\n]" if ints else "[]"


def save(path, arrays):
    """Write `arrays` (TF layouts, creation order) to `path` in the original's exact bytes."""
    atomic.write_bytes(path, dumps(quantize(arrays)).encode())


def read(path, kind, max_bytes=MAX_BYTES):
    """The parsed JSON file `path`; a one-line UserError if it is missing, too large, or not
    `kind` (e.g. "a controller JSON file") of finite numbers (files/json_data.py)."""
    return json_data.read(path, kind, max_bytes)


def numbers(path, values, what):
    """`values` (nested lists) as a float64 array, or a one-line UserError naming `path` and `what`
    when they are not a rectangular array of finite numbers."""
    try:
        array = np.array(values, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        raise UserError(f"{path}: {what} is not a rectangular array of numbers") from None
    if not np.isfinite(array).all():
        raise UserError(f"{path}: {what} holds numbers that are not finite")
    return array


def read_arrays(path):
    """The arrays of a weight JSON as stored (float64 integers), parsed once: enough to size the
    network (`scaled` then checks and converts them); a one-line UserError naming the problem."""
    data = read(path, "a weight JSON file")
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a list of weight arrays, found {type(data).__name__}")
    return [numbers(path, values, f"array {i}") for i, values in enumerate(data)]


def scaled(path, arrays, shapes):
    """`arrays` read from `path`, checked against the TF `shapes`, as float32 value / 10000."""
    if len(arrays) != len(shapes):
        raise UserError(f"{path}: expected a list of {len(shapes)} weight arrays, found {len(arrays)}")
    for i, (a, shape) in enumerate(zip(arrays, shapes)):
        if a.shape != tuple(shape):
            raise UserError(f"{path}: array {i} has shape {a.shape}, expected {tuple(shape)}")
    return [(a / SCALE).astype(np.float32) for a in arrays]


def load(path, shapes):
    """Read a weight JSON and return float32 arrays (value / 10000) of the given TF `shapes`."""
    return scaled(path, read_arrays(path), shapes)


NUM_INITIAL_Z = 1000  # initial_z.json holds the first frames of the first 1000 episodes


def save_initial_z(path, mu, logvar):
    """initial_z.json: frame-0 [mu list, logvar list] of the first 1000 episodes of (N, T, z)
    series arrays, as trunc(value * 1e4) integers."""
    def ints(a):  # the original's float16 * 10000 ran in float32 (old NumPy value-based casting)
        return (a[:NUM_INITIAL_Z, 0, :].astype(np.float32) * np.float32(SCALE)).astype(np.int64).tolist()
    atomic.save_json(path, [ints(mu), ints(logvar)], sort_keys=True, indent=0, separators=(",", ": "))


def load_initial_z(path, z_size=32):
    """The entries of an initial_z.json, as a list of (mu, logvar) float64 arrays (z_size,).
    The original's file has 1 entry, rnn_train.py writes up to 1000."""
    data = read(path, "an initial_z JSON file")
    if not isinstance(data, list) or len(data) != 2:
        raise UserError(f"{path}: expected [mu list, logvar list] of numbers")
    mu, logvar = (numbers(path, part, name) for part, name in zip(data, ("mu", "logvar")))
    if mu.ndim != 2 or mu.shape != logvar.shape or mu.shape[0] == 0 or mu.shape[1] != z_size:
        raise UserError(f"{path}: expected [mu list, logvar list] of equally many entries of {z_size} numbers, "
                        f"found shapes {mu.shape} and {logvar.shape}")
    return list(zip(mu / SCALE, logvar / SCALE))
