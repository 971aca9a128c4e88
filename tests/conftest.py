"""Shared test fixtures: paths, the original's pretrained files, subprocess helpers."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TF_MODELS = SHARED / "tf_models"
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


@pytest.fixture(params=[False, True], ids=["pygame", "compiled"])
def compiled(request):
    """Both ways of drawing and resizing: pygame's and Pillow's code, and the numba kernels (which
    must load here: requirements.txt installs numba)."""
    if request.param:
        import kernels
        assert kernels.load(), "the numba kernels did not load (see the line above)"
    return request.param


@pytest.fixture
def tf_models():
    """Folder of the original's pretrained files (../shared/tf_models); skips when absent."""
    if not TF_MODELS.is_dir():
        pytest.skip("../shared/tf_models is not present")
    return TF_MODELS


def write_random_agent(folder, vae="vae/vae.json", rnn="rnn/rnn.json"):
    """Random V and M (the original's sizes, torch seed 0) as TF JSON files at folder/vae and
    folder/rnn: what train.py, model.py and the packs read when any weights will do."""
    import torch

    from rnn.rnn import MDNRNN, hps_sample
    from vae.vae import ConvVAE

    torch.manual_seed(0)
    ConvVAE().save_json(str(folder / vae))
    MDNRNN(hps_sample).save_json(str(folder / rnn))
    return folder


def run_script(script, *args, cwd=None, mpi=0, timeout=300, check=True):
    """Run a stage script of the repository (under `mpiexec -n mpi` when mpi > 0)."""
    cmd = [sys.executable, str(REPO / script), *map(str, args)]
    if mpi:
        cmd = [MPIEXEC, "-n", str(mpi), *cmd]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc
