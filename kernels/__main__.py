"""`python -m kernels`: compile the kernels into numba's on-disk cache now (make install does),
so that processes started later, MPI workers among them, only load it. Exit status 1 if numba
cannot load or compile them (the project then runs without them)."""
import sys
import time

import kernels

started = time.time()
ok = kernels.load()
print(f"kernels: {'ready' if ok else 'unavailable'} ({time.time() - started:.1f} s)")
sys.exit(0 if ok else 1)
