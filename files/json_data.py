"""Reading a JSON file that a user hands us (weights, controllers, logs, initial_z, pipeline.json,
a checkpoint's entries) as data: at most `max_bytes` read, every float finite, nesting no
deeper than `max_depth`; anything else is one line naming the file. Python's json alone
accepts NaN, Infinity and 1e999 and recurses on nesting until it runs out of stack. (Integers
are left to the readers that make arrays of them: an integer beyond float64's range fails
that conversion, and json refuses one of over 4300 digits.)
"""
import json

from plumbing.cli import UserError

def _constant(name):
    raise ValueError(f"non-finite number {name}")


def _float(text):
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]} overflows float64")
    return value


def depth(value, limit):
    """The nesting depth of parsed JSON `value`, counting at most to `limit` + 1."""
    level, containers = 0, [value] if isinstance(value, (list, dict)) else []
    while containers and level <= limit:
        level += 1
        containers = [v for x in containers for v in (x.values() if isinstance(x, dict) else x)
                      if isinstance(v, (list, dict))]
    return level


def loads(data, where, kind, max_depth=8):
    """The parsed JSON bytes or text `data` of `where` (a file), or a one-line UserError."""
    try:
        value = json.loads(data, parse_constant=_constant, parse_float=_float)
    except RecursionError:
        raise UserError(f"{where}: not {kind} (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{where}: not {kind} ({str(e)[:160]})") from None
    if depth(value, max_depth) > max_depth:
        raise UserError(f"{where}: not {kind} (nested deeper than {max_depth} levels)")
    return value


def read(path, kind, max_bytes, max_depth=8):
    """The parsed JSON file `path` (e.g. kind "a controller JSON file"): a one-line UserError if it
    is missing, larger than `max_bytes`, or not JSON of finite numbers nested at most `max_depth`."""
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected {kind}") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror})") from None
    if len(data) > max_bytes:
        raise UserError(f"{path}: larger than {max_bytes} bytes, more than {kind} takes")
    return loads(data, path, kind, max_depth)
