"""checkpoint.py: round trip of a trainer's state, one-line refusals, and no code run on load."""
import os
import pickle

import numpy as np
import pytest
import torch

from files import checkpoint
from plumbing.cli import UserError


def test_round_trip_restores_a_torch_generator(tmp_path):
    path = tmp_path / "c.pt"
    gen = torch.Generator().manual_seed(2)
    checkpoint.save(path, "t.py", {"lr": 0.1}, gen=gen.get_state(), step=7, weights={"w": torch.arange(4.0)})
    expected = torch.randn(3, generator=gen)
    state = checkpoint.load(path, "t.py", {"lr": 0.1})
    gen.set_state(state["gen"])
    assert torch.equal(torch.randn(3, generator=gen), expected)
    assert state["step"] == 7 and torch.equal(state["weights"]["w"], torch.arange(4.0))


def test_refusals_name_the_file_and_the_problem(tmp_path):
    path = tmp_path / "c.pt"
    with pytest.raises(UserError, match=r"c.pt: no checkpoint to resume from \(run without --resume to start\)$"):
        checkpoint.load(path, "t.py", {})
    checkpoint.save(path, "t.py", {"lr": 0.1, "seed": 1})
    with pytest.raises(UserError, match=r"other settings \(lr 0.1 there, 0.2 now\); resume needs the same ones$"):
        checkpoint.load(path, "t.py", {"lr": 0.2, "seed": 1})
    with pytest.raises(UserError, match=r"c.pt: not a checkpoint of other.py$"):
        checkpoint.load(path, "other.py", {"lr": 0.1, "seed": 1})
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"c.pt: not a checkpoint of t.py \("):
        checkpoint.load(path, "t.py", {})
    with pytest.raises(UserError, match="is a folder"):
        checkpoint.load(tmp_path, "t.py", {})


class _Payload:
    def __reduce__(self):
        return os.mkdir, (self.target,)


def test_a_foreign_pickle_runs_no_code_on_load(tmp_path):
    target = tmp_path / "pwned"
    payload = _Payload()
    payload.target = str(target)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:  # a plain pickle: torch.load(weights_only=False) would call os.mkdir
        pickle.dump({"kind": "t.py", "settings": {}, "x": payload}, f)
    with pytest.raises(UserError, match="evil.pt: not a checkpoint of t.py"):
        checkpoint.load(path, "t.py", {})
    assert not target.exists()
    torch.save({"kind": "t.py", "settings": {}, "x": payload}, path)  # inside torch's zip format too
    with pytest.raises(UserError, match="evil.pt: not a checkpoint of t.py"):
        checkpoint.load(path, "t.py", {})
    assert not target.exists()


def test_a_checkpoint_older_than_an_option_stands_for_its_before_value(tmp_path):
    """A setting added after checkpoints were written (config's `before`): a checkpoint that lacks
    it resumes with the value it ran with, refuses another one naming that value, and a `before`
    entry the trainer does not compare (an amount that may grow on resume) is left out."""
    path = tmp_path / "c.pt"
    checkpoint.save(path, "t.py", {"lr": 0.1})  # written before sigma_adaptation existed
    before = {"sigma_adaptation": "tpa", "max_steps": 0}
    assert checkpoint.load(path, "t.py", {"lr": 0.1, "sigma_adaptation": "tpa"}, before)["settings"] == {"lr": 0.1}
    with pytest.raises(UserError, match=r"other settings \(sigma_adaptation 'tpa' there, 'csa' now\); resume needs"):
        checkpoint.load(path, "t.py", {"lr": 0.1, "sigma_adaptation": "csa"}, before)
    with pytest.raises(UserError, match=r"other settings \(hflip absent there, True now\); resume needs"):
        checkpoint.load(path, "t.py", {"lr": 0.1, "sigma_adaptation": "tpa", "hflip": True}, before)
    checkpoint.save(path, "t.py", {"lr": 0.1, "sigma_adaptation": "csa"})  # a recorded value wins over `before`
    checkpoint.load(path, "t.py", {"lr": 0.1, "sigma_adaptation": "csa"}, before)


def test_a_torch_trainers_checkpoint_is_bounded_by_its_model_and_must_fit_it(tmp_path):
    """restore_training refuses, in one line and before anything is assigned, a file larger than
    the model and its Adam moments can fill, a compressed entry, tensors of other shapes, NaN
    weights and a position that is not a count."""
    import zipfile

    def trainer(width):
        model = torch.nn.Linear(width, 2)
        return model, torch.optim.Adam(model.parameters()), torch.Generator()

    path = tmp_path / "c.pt"
    model, optimizer, gen = trainer(3)
    checkpoint.save_training(path, "t.py", {}, model, optimizer, gen, step=4)
    assert checkpoint.restore_training(path, "t.py", {}, None, *trainer(3)) == {"step": 4}
    with pytest.raises(UserError, match="c.pt: its tensors do not fit this model"):
        checkpoint.restore_training(path, "t.py", {}, None, *trainer(4))
    checkpoint.save_training(path, "t.py", {}, *trainer(3), step=-1)
    with pytest.raises(UserError, match=r"c.pt: its position \(step\) is not non-negative integers"):
        checkpoint.restore_training(path, "t.py", {}, None, *trainer(3))
    model, optimizer, gen = trainer(3)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    checkpoint.save_training(path, "t.py", {}, model, optimizer, gen, step=1)
    with pytest.raises(UserError, match="not finite"):
        checkpoint.restore_training(path, "t.py", {}, None, *trainer(3))
    big = torch.nn.Linear(300_000, 2)  # 2.4 MB of weights
    checkpoint.save_training(path, "t.py", {}, big, torch.optim.Adam(big.parameters()), torch.Generator(), step=1)
    with pytest.raises(UserError, match="bytes, more than a checkpoint of t.py for this model takes"):
        checkpoint.restore_training(path, "t.py", {}, None, *trainer(3))
    checkpoint.save_training(path, "t.py", {}, *trainer(3), step=1)
    with zipfile.ZipFile(path) as z:
        files = {i.filename: z.read(i.filename) for i in z.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    with pytest.raises(UserError, match="a compressed entry"):
        checkpoint.restore_training(path, "t.py", {}, None, *trainer(3))
