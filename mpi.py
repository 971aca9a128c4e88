"""MPI plumbing shared by extract.py and train.py (mpi4py with the `mpich` wheel).

Scripts run either under `mpiexec -n N python script.py` or alone (a singleton world of
size 1). Blocking MPI receives and barriers busy-poll a whole core; on a 2-core machine that
steals a worker's CPU, so every wait here polls a non-blocking request and sleeps in between.
"""
import os
import subprocess
import sys
import time

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
size = comm.Get_size()

POLL_SECONDS = 0.005


def wait(request, timeout=None):
    """Wait for an mpi4py request without spinning; returns its result (for irecv).

    With `timeout` (seconds), returns `(False, None)` if it has not completed by then;
    otherwise returns `(True, result)`.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        done, result = request.test()
        if done:
            return (True, result) if timeout is not None else result
        if deadline is not None and time.monotonic() > deadline:
            return False, None
        time.sleep(POLL_SECONDS)


def barrier():
    """`comm.Barrier()` without burning a core while waiting."""
    wait(comm.Ibarrier())


def mpiexec():
    """Path of the mpiexec that belongs to this Python (the venv's, from the mpich wheel)."""
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return local if os.path.exists(local) else "mpiexec"


def fork(n):
    """The original's self-launch: if not already under MPI, re-run this script as
    `mpiexec -n n python -u <script> <args>` and return its exit status; under MPI return None."""
    if os.environ.get("IN_MPI") or size > 1:
        return None
    env = dict(os.environ, IN_MPI="1", MKL_NUM_THREADS="1", OMP_NUM_THREADS="1")
    cmd = [mpiexec(), "-n", str(n), sys.executable, "-u", *sys.argv]
    return subprocess.call(cmd, env=env)
