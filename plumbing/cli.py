"""How every stage script reports a user's mistake: one line, a non-zero exit, no traceback.

A stage script raises `UserError("record/12.npz: not a zip file")` for anything the user
can fix (a corrupt or foreign file, a wrong shape, a missing folder, an impossible flag) and
runs its `main` through `run(main)`. Bugs still raise normally, with their traceback.
"""
import os
import sys


class UserError(Exception):
    """A mistake in the user's input or files; the message names the file and the problem."""


def checked_seed(seed):
    """A seed given on the command line (`model.py norender <params> <seed>` and its kin): `seed`
    itself, or a UserError when it is negative (np.random.seed refuses those with a traceback)."""
    if seed < 0:
        raise UserError(f"seed {seed}: must be >= 0")
    return seed


def run(main):
    """Call `main()`; turn a UserError into `<script>: error: <message>` and exit status 2."""
    try:
        main()
    except UserError as e:
        _clear_progress_bars()
        if _mpi_rank() == 0:  # under mpiexec every rank fails alike; one line is enough
            prog = os.path.basename(sys.argv[0]) or "python"
            print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
    except BrokenPipeError:  # the reader left (`| head`): stop quietly, as a shell tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that exit's flush cannot fail again
        sys.exit(1)


def _clear_progress_bars():
    """Erase the lines of open tqdm bars, so that the error starts a line of its own."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.leave = False
        bar.close()


def _mpi_rank():
    """This process's rank as told by the MPI launcher (MPICH or Open MPI), 0 outside MPI."""
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        if name in os.environ:
            return int(os.environ[name])
    return 0
