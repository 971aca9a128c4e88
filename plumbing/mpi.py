"""MPI plumbing shared by extract.py and train.py (mpi4py with the `mpich` wheel).

Scripts run either under `mpiexec -n N python script.py` or alone (a singleton world of
size 1). Blocking MPI receives busy-poll a whole core; on a 2-core machine that steals a
worker's CPU, so every wait here polls a non-blocking request and sleeps in between.
"""
import os
import re
import subprocess
import sys
import time

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
size = comm.Get_size()

POLL_SECONDS = 0.005


def wait(request):
    """Wait for an mpi4py request without spinning; returns its result (for irecv)."""
    while True:
        done, result = request.test()
        if done:
            return result
        time.sleep(POLL_SECONDS)


def mpiexec():
    """Path of the mpiexec that belongs to this Python (the venv's, from the mpich wheel)."""
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return local if os.path.exists(local) else "mpiexec"


# MPICH's own lines when a job ends by MPI_Abort or a killed process: the job already said why in one line.
_BANNER = re.compile(r"^(Abort\(\d+\) on node \d+ \(rank \d+ in comm \d+\): application called MPI_Abort|=+$|=   )")


def fork(n):
    """The original's self-launch: if not already under MPI, re-run this script as
    `mpiexec -n n python -u <script> <args>` and return its exit status; under MPI return None.
    The job's stderr passes through without MPICH's abort and bad-termination banners."""
    if os.environ.get("IN_MPI") or size > 1:
        return None
    env = dict(os.environ, IN_MPI="1", MKL_NUM_THREADS="1", OMP_NUM_THREADS="1")
    cmd = [mpiexec(), "-n", str(n), sys.executable, "-u", *sys.argv]
    with subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, errors="replace") as proc:
        for line in proc.stderr:
            if not _BANNER.match(line):
                sys.stderr.write(line)
                sys.stderr.flush()
    return proc.returncode
