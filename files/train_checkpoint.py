"""train.py's checkpoint, `<log base>.checkpoint.pt`: plain JSON and arrays in a zip, no pickle.

Format version 2 (version 1, before, held the optimizer as pickled bytes inside a torch file):
an uncompressed zip of
  header.json            {"format", "version", "kind", "settings", "optimizer", "t", "evaluations", "compact"}
  state.json             the run's record (STATE_KEYS) and numpy's RNG position
  np_random_keys.npy     numpy's global Mersenne Twister keys (uint32, 624)
  optimizer/<field>.npy  the optimizer's state as files/es_state.py lists it (compact: CMA's
                         covariance as es.sm.C_upper, its upper triangle, without es.sm.B and D)
read with `np.load(allow_pickle=False)` and files/json_data.py. `load` takes nothing on trust: the
zip's directory is checked before it is parsed (entry count, names, no compression), every
entry's size is held to what the run's settings and the header's generation count allow before
it is read, JSON refuses non-finite numbers and deep nesting, and the optimizer is built afresh
from the run's settings, each of its fields checked before it is assigned (es_state.restore).
Any failure is one line naming the file.
"""
import io
import json
import os
import struct
import zipfile

import numpy as np

from files import atomic, es_state, json_data
from files.checkpoint import compare_settings
from plumbing.cli import UserError

FORMAT, VERSION, KIND = "train.py checkpoint", 2, "train.py"
STATE_KEYS = ("t", "pending_eval", "elapsed", "history", "history_best", "eval_log", "current_param",
              "best_reward_eval", "best_params_eval", "max_len", "env_steps")  # state.json: train.py's run record
HEADER_BYTES = 1 << 16  # header.json: the settings and a few numbers
MAX_GENERATIONS = 100_000  # 50 times the original's longest run; bounds the history a header may claim
ROW_BYTES = 512  # JSON of one generation's history rows (.hist.json's and .hist_best.json's)
NUMBER_BYTES = 32  # JSON of one parameter of a logged controller
NPY_HEADER_BYTES = 1024
COVARIANCE, UPPER = "es.sm.C", "es.sm.C_upper"  # a compact checkpoint's triangle of CMA's covariance
OLDER = ("a checkpoint of an older train.py (format 1, whose optimizer is pickled; this version loads no pickle): "
         "resume it with the version that wrote it (git checkout a3fc0b6), or start the run again")


def save(path, settings, es, state, np_random_state, compact=False):
    """Atomically write the checkpoint: `state` (JSON-able values), the optimizer `es`, numpy's
    global RNG state (np.random.get_state()). `compact` (a run's pack, files/run_pack.py) keeps
    CMA's covariance as its upper triangle and leaves out its eigendecomposition, which `load`
    recomputes: a third of the bytes at 867 parameters; the run then samples from the current
    covariance, where pycma may have kept sampling from one up to its lazy gap (~3 generations
    at population 64) older."""
    name, keys, pos, has_gauss, cached = np_random_state
    arrays = es_state.arrays_of(es)
    compact = compact and COVARIANCE in arrays
    if compact:
        arrays[UPPER] = arrays.pop(COVARIANCE)[np.triu_indices(es.num_params)]
        del arrays["es.sm.B"], arrays["es.sm.D"]
    header = dict(format=FORMAT, version=VERSION, kind=KIND, settings=settings, optimizer=type(es).__name__,
                  t=int(state["t"]), evaluations=len(state["eval_log"]), compact=compact)
    record = dict(state, np_random=dict(pos=int(pos), has_gauss=int(has_gauss), cached=float(cached)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("header.json", json.dumps(header, allow_nan=False))
        z.writestr("state.json", json.dumps(record, allow_nan=False))
        z.writestr("np_random_keys.npy", _npy(np.asarray(keys, dtype=np.uint32)))
        for field, array in arrays.items():
            z.writestr(f"optimizer/{field}.npy", _npy(array))
    atomic.write_bytes(path, buf.getvalue())


def _npy(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def load(path, settings, before, make_es, eval_steps=1):
    """(state, np_random_state) of the checkpoint at `path`, its optimizer restored into the fresh
    one `make_es()` builds (state["es"]), or a one-line UserError naming `path`."""
    es = make_es()
    z = _open(path, es)
    with z:
        header = _json(z, path, "header.json", HEADER_BYTES)
        _check_header(header, path, settings, before, es)
        t, evaluations = header["t"], header["evaluations"]
        if evaluations > t // eval_steps + 1:
            raise UserError(f"{path}: {evaluations} evaluations in {t} generations, more than --eval_steps "
                            f"{eval_steps} allows")
        names = {i.filename for i in z.infolist()}
        _check_entry_sizes(z, path, es, t, evaluations)
        record = _json(z, path, "state.json", _state_bytes(es, t, evaluations))
        keys = _array(z, path, "np_random_keys.npy")
        arrays = {n[len("optimizer/"):-len(".npy")]: _array(z, path, n) for n in sorted(names)
                  if n.startswith("optimizer/")}
    np_random = _checked_rng(record.pop("np_random", None) if isinstance(record, dict) else None, keys, path)
    _check_record(record, path, t, evaluations, es.num_params)
    if header.get("compact") is True:
        _expand(arrays, es, path)
    elif UPPER in arrays:
        raise UserError(f"{path}: holds a compact covariance but its header does not say compact")
    es_state.restore(es, arrays, path)
    if header.get("compact") is True:
        _decompose(es)
    return dict(record, es=es), np_random


def _expand(arrays, es, path):
    """The full covariance of a compact checkpoint, with placeholders for its eigendecomposition."""
    n = es.num_params
    upper = arrays.pop(UPPER, None)
    if upper is None or upper.dtype != np.float64 or upper.shape != (n * (n + 1) // 2,) or \
            not np.isfinite(upper).all():
        raise UserError(f"{path}: optimizer field {UPPER} is not the {n * (n + 1) // 2} finite float64 numbers "
                        f"of a {n} x {n} upper triangle")
    c = np.zeros((n, n))
    c[np.triu_indices(n)] = upper
    arrays[COVARIANCE] = c + np.triu(c, 1).T
    arrays["es.sm.B"], arrays["es.sm.D"] = np.eye(n), np.ones(n)


def _decompose(es):
    """pycma's own eigendecomposition of the restored covariance (its counters as saved)."""
    sm = es.es.sm
    count = sm.count_eigen
    sm._decompose_C()
    sm.count_eigen, sm.last_update = count, sm.count_tell
    es.es.C, es.es.B, es.es.D = sm.C, sm.B, sm.D


def read_header(path):
    """header.json of the checkpoint at `path` (read within its bound; its settings are a table), or
    a one-line UserError: what a tool needs to rebuild the run's configs before `load`."""
    try:
        with zipfile.ZipFile(path) as z:
            header = _json(z, path, "header.json", HEADER_BYTES)
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"{path}: not a checkpoint of {KIND} ({e})") from None
    if not isinstance(header, dict) or not isinstance(header.get("settings"), dict):
        raise UserError(f"{path}: not a checkpoint of {KIND}")
    return header


def _open(path, es):
    """The zip at `path` once its size and directory are within bounds, else a one-line UserError."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no checkpoint to resume from (run without --resume to start)") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror})") from None
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder, expected a checkpoint of {KIND}")
    max_entries = len(es_state.fields_of(es)) + 3
    with open(path, "rb") as f:
        if size < 22:
            raise UserError(f"{path}: not a checkpoint of {KIND} (too short)")
        f.seek(size - 22)
        signature, _, _, _, entries, directory, _, comment = struct.unpack("<4s4H2LH", f.read(22))
    if signature != b"PK\x05\x06" or comment:
        raise UserError(f"{path}: not a checkpoint of {KIND} (not a zip written by train.py)")
    if entries > max_entries or directory > entries * (46 + 256):
        if entries > max_entries and _is_torch_zip(path):
            raise UserError(f"{path}: {OLDER}")
        raise UserError(f"{path}: not a checkpoint of {KIND} ({entries} entries, at most {max_entries} expected)")
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise UserError(f"{path}: not a checkpoint of {KIND} ({e})") from None
    names = [i.filename for i in z.infolist()]
    if any(n.endswith("data.pkl") for n in names):
        z.close()
        raise UserError(f"{path}: {OLDER}")
    allowed = {"header.json", "state.json", "np_random_keys.npy", f"optimizer/{UPPER}.npy"} | \
        {f"optimizer/{f[0]}.npy" for f in es_state.fields_of(es)}
    strange = [n for n in names if n not in allowed] or [n for n in set(names) if names.count(n) > 1]
    packed = [i.filename for i in z.infolist() if i.compress_type != zipfile.ZIP_STORED]
    if strange or packed:
        z.close()
        why = f"an entry {strange[0]!r} train.py never writes" if strange else f"a compressed entry {packed[0]!r}"
        raise UserError(f"{path}: not a checkpoint of {KIND} ({why})")
    return z


def _is_torch_zip(path):
    try:
        with zipfile.ZipFile(path) as z:
            return any(i.filename.endswith("data.pkl") for i in z.infolist()[:64])
    except Exception:  # any damaged zip: not ours either way
        return False


def _check_header(header, path, settings, before, es):
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("kind") != KIND:
        raise UserError(f"{path}: not a checkpoint of {KIND}")
    if header.get("version") != VERSION:
        raise UserError(f"{path}: checkpoint format {header.get('version')!r}, this train.py reads {VERSION}")
    if header.get("optimizer") != type(es).__name__:
        raise UserError(f"{path}: holds a {header.get('optimizer')!r} optimizer, these settings build "
                        f"{type(es).__name__}")
    cap = MAX_GENERATIONS
    for key, high in (("t", cap), ("evaluations", cap + 1)):
        value = header.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
            raise UserError(f"{path}: header field {key} is {value!r}, expected an integer in [0, {high}]")
    if header.get("compact", False) not in (True, False):
        raise UserError(f"{path}: header field compact is {header.get('compact')!r}, expected true or false")
    if not isinstance(header.get("settings"), dict):
        raise UserError(f"{path}: header field settings is not a table of settings")
    compare_settings(path, header["settings"], settings, before)


def _state_bytes(es, t, evaluations):
    """The most bytes state.json can take after `t` generations and `evaluations` evaluations."""
    return HEADER_BYTES + t * ROW_BYTES + (evaluations + 2) * (es.num_params * NUMBER_BYTES + ROW_BYTES)


def _check_entry_sizes(z, path, es, t, evaluations):
    n = es.num_params
    bound = {"header.json": HEADER_BYTES, "state.json": _state_bytes(es, t, evaluations),
             "np_random_keys.npy": 624 * 4 + NPY_HEADER_BYTES,
             f"optimizer/{UPPER}.npy": n * (n + 1) // 2 * 8 + NPY_HEADER_BYTES,
             **{f"optimizer/{path}.npy": size + NPY_HEADER_BYTES for path, size in es_state.max_bytes(es).items()}}
    for info in z.infolist():
        if info.file_size > bound[info.filename] or info.compress_size > bound[info.filename]:
            raise UserError(f"{path}: entry {info.filename} holds {info.file_size} bytes, more than the "
                            f"{bound[info.filename]} these settings allow")


def _json(z, path, name, limit):
    try:
        if z.getinfo(name).file_size > limit:  # the directory's claim, checked before reading
            raise UserError(f"{path}: {name} holds {z.getinfo(name).file_size} bytes, more than the {limit} "
                            "these settings allow")
        with z.open(name) as f:
            data = f.read(limit + 1)  # and the bytes, in case the claim lies
    except KeyError:
        raise UserError(f"{path}: not a checkpoint of {KIND} (no {name})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise UserError(f"{path}: damaged ({name}: {e})") from None
    if len(data) > limit:
        raise UserError(f"{path}: {name} holds more than the {limit} bytes these settings allow")
    return json_data.loads(data, path, f"a checkpoint of {KIND} ({name})", max_depth=4)


def _array(z, path, name):
    try:
        return np.load(io.BytesIO(z.read(name)), allow_pickle=False)
    except KeyError:
        raise UserError(f"{path}: not a checkpoint of {KIND} (no {name})") from None
    except Exception as e:  # numpy raises several types for a damaged or object array
        raise UserError(f"{path}: {name} is not a plain array ({type(e).__name__}: {str(e)[:120]})") from None


def _checked_rng(rng, keys, path):
    """numpy's RNG state tuple from its saved parts, or a one-line UserError."""
    ok = (isinstance(rng, dict) and set(rng) == {"pos", "has_gauss", "cached"}
          and keys.dtype == np.uint32 and keys.shape == (624,)
          and isinstance(rng["pos"], int) and 0 <= rng["pos"] <= 624
          and rng["has_gauss"] in (0, 1) and isinstance(rng["cached"], (int, float)))
    if not ok:
        raise UserError(f"{path}: numpy's RNG state in it is not one numpy wrote")
    return ("MT19937", keys, rng["pos"], rng["has_gauss"], float(rng["cached"]))


def _check_record(record, path, t, evaluations, n):
    """state.json against the header and the parameter count: the keys train.py writes, each of
    the type and length train.py gives it, every number finite (json refused NaN and Infinity)."""
    def bad(what):
        return UserError(f"{path}: state.json's {what}")

    def params(v):
        return isinstance(v, list) and len(v) == n and all(_number(x) for x in v)

    if not isinstance(record, dict) or set(record) != set(STATE_KEYS):
        raise bad(f"keys are not train.py's ({', '.join(sorted(STATE_KEYS))})")
    if record["t"] != t or not isinstance(record["pending_eval"], bool):
        raise bad("t or pending_eval disagree with the header")
    for key in ("elapsed", "max_len"):
        if not isinstance(record[key], int) or isinstance(record[key], bool) or not -1 <= record[key] < 2**62:
            raise bad(f"{key} is not an integer")
    for key in ("best_reward_eval", "env_steps"):
        if not _number(record[key]):
            raise bad(f"{key} is not a number")
    if not (isinstance(record["history"], list) and len(record["history"]) == t
            and all(isinstance(r, list) and len(r) == 9 and all(_number(x) for x in r) for r in record["history"])):
        raise bad(f"history is not {t} rows of 9 numbers")
    if not (isinstance(record["history_best"], list) and len(record["history_best"]) == evaluations
            and all(isinstance(r, list) and len(r) == 10 for r in record["history_best"])):
        raise bad(f"history_best is not {evaluations} rows of 10 values")
    if not (isinstance(record["eval_log"], list) and len(record["eval_log"]) == evaluations
            and all(isinstance(r, list) and len(r) == 3 and _number(r[0]) and _number(r[1]) and params(r[2])
                    for r in record["eval_log"])):
        raise bad(f"eval_log is not {evaluations} rows of [generation, reward, {n} parameters]")
    for key in ("current_param", "best_params_eval"):
        if record[key] is not None and not params(record[key]):
            raise bad(f"{key} is not {n} numbers")


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) < 1e300
