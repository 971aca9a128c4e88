"""Atomic file output: write beside the target, then rename over it.

A reader (or a resumed run) therefore sees either the old complete file or the new complete
file, never a half-written one, and a run that fails part-way never clobbers a good earlier
output. Every stage writes its outputs and checkpoints through these functions.
"""
import io
import json
import os
import tempfile

import numpy as np

from plumbing.cli import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_bytes(path, data):
    """Atomically replace `path` with `data` (bytes), creating its folder if needed."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    except OSError as e:
        raise UserError(f"{folder}: cannot write here ({e.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual open() permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def copy(source, path):
    """Atomically replace `path` with the bytes of file `source`."""
    with open(source, "rb") as f:
        write_bytes(path, f.read())


def save_npz(path, compressed=True, **arrays):
    """Atomic `np.savez[_compressed](path, **arrays)`; `path` is used exactly as given."""
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    write_bytes(path, buf.getvalue())


def save_json(path, obj, **dump_kwargs):
    """Atomic `json.dump(obj, f, **dump_kwargs)`, so callers keep the original's exact layout."""
    write_bytes(path, json.dumps(obj, **dump_kwargs).encode())


def save_torch(path, obj):
    """Atomic `torch.save(obj, path)` (checkpoints)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(path, buf.getvalue())


def check_writable(folder):
    """Prove that `folder` can be written (made, if it does not exist yet) without creating it,
    or raise a one-line UserError."""
    folder = os.path.abspath(os.fspath(folder))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError(f"{folder}: cannot write here ({existing} is not a folder)")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise UserError(f"{folder}: cannot write here ({e.strerror})") from None
