"""Reading an `.npz` file that a user hands us (episodes, series) as data: numpy arrays only.

Before anything is decompressed, each wanted array's header is read from the zip: its dtype
must be one the reader expects and its size within `max_bytes`, and the zip entry may hold no
more than that header says (a deflated entry can claim any ratio, so the claim is what is
bounded). Then `np.load(allow_pickle=False)` reads it, so an object array is refused rather
than unpickled. Any problem is one line naming the file.
"""
import zipfile
import zlib

import numpy as np

from plumbing.cli import UserError

HEADER_SLACK = 4096  # an .npy header is at most a few hundred bytes


def header(path, name, kind):
    """(shape, dtype) of array `name` in npz `path`, from its header alone (nothing decompressed
    beyond it); a one-line UserError for a missing array or a damaged or foreign file."""
    try:
        with zipfile.ZipFile(path) as z, z.open(f"{name}.npy") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f, max_header_size=HEADER_SLACK)
            size = z.getinfo(f"{name}.npy").file_size
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected {kind}") from None
    except KeyError:
        raise UserError(f"{path}: no '{name}' array (not {kind})") from None
    except zipfile.BadZipFile:
        raise UserError(f"{path}: corrupt or not {kind} (not an .npz archive)") from None
    except (OSError, ValueError, EOFError, zlib.error, NotImplementedError) as e:
        raise UserError(f"{path}: corrupt or not {kind} ({type(e).__name__}: {str(e)[:120]})") from None
    if size > int(np.prod(shape, dtype=np.int64)) * dtype.itemsize + HEADER_SLACK:
        raise UserError(f"{path}: array {name} holds {size} bytes, more than its header's {dtype} {tuple(shape)}")
    return tuple(shape), dtype


def load(path, kind, dtypes, max_bytes, optional=None):
    """{name: array} of npz `path` for each name of `dtypes` ({name: allowed dtypes}) and each of
    `optional` (likewise) that the file holds, after each header passed `header`'s checks, its
    dtype is allowed and its data within `max_bytes`."""
    if optional:
        try:
            with zipfile.ZipFile(path) as z:
                present = {n[:-len(".npy")] for n in z.namelist()}
        except (zipfile.BadZipFile, OSError) as e:
            raise UserError(f"{path}: corrupt or not {kind} ({type(e).__name__}: {str(e)[:120]})") from None
        dtypes = {**dtypes, **{k: v for k, v in optional.items() if k in present}}
    for name, allowed in dtypes.items():
        shape, dtype = header(path, name, kind)
        if dtype not in [np.dtype(d) for d in allowed]:
            raise UserError(f"{path}: array {name} is {dtype}, expected {' or '.join(str(np.dtype(d)) for d in allowed)}")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes > max_bytes:
            raise UserError(f"{path}: array {name} {tuple(shape)} takes {nbytes} bytes, more than the {max_bytes} "
                            f"{kind} may take")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in dtypes}
    except Exception as e:  # zlib and format errors of a damaged file
        raise UserError(f"{path}: corrupt or not {kind} ({type(e).__name__}: {str(e)[:120]})") from None
