"""M's reward and done heads (--reward_done 1): the loss against numpy, the JSON extension the
original's loader skips, hps_of, and rnn_train.py learning them (off: the original's M)."""
import numpy as np
import pytest
import torch
from conftest import run_script
from test_rnn_train import TINY, make_series, tiny_hps

from files import tfjson
from rnn.rnn import MDNRNN, dream_step, episode_steps, hps_of, mdn_step, reward_done_loss, rnn_init_state

torch.set_num_threads(1)


def numpy_done_cost(logit, done, factor):
    """The original's Doom M: tf.nn.sigmoid_cross_entropy_with_logits (max(x, 0) - x z + log(1 +
    exp(-|x|))) times (1 + z (restart_factor - 1)), averaged."""
    ce = np.maximum(logit, 0) - logit * done + np.log1p(np.exp(-np.abs(logit)))
    return np.mean((1.0 + done * (factor - 1.0)) * ce)


def test_losses_match_the_numpy_reference():
    rng = np.random.default_rng(0)
    logit, pred, reward = rng.normal(0, 3, (3, 4, 50))
    done = rng.random((4, 50)) < 0.1
    d, r = reward_done_loss(*(torch.tensor(a) for a in (logit, pred, done, reward)), 10.0)
    np.testing.assert_allclose(d.item(), numpy_done_cost(logit, done.astype(float), 10.0), rtol=1e-12)
    np.testing.assert_allclose(r.item(), np.mean((pred - reward) ** 2), rtol=1e-12)
    d1, _ = reward_done_loss(*(torch.tensor(a) for a in (logit, pred, done, reward)), 1.0)
    assert d.item() > d1.item()  # the rare done = 1 steps weigh more


def test_the_asymmetric_reward_cost_weighs_the_optimistic_steps():
    """--reward_asymmetry k (Sha01in's port: 5): a step predicted above its reward costs k times its
    squared error, one below costs it once; the mask still selects the steps averaged."""
    rng = np.random.default_rng(1)
    logit, pred, reward = rng.normal(0, 3, (3, 4, 50))
    done, mask = rng.random((4, 50)) < 0.1, rng.random((4, 50)) < 0.7
    _, r = reward_done_loss(*(torch.tensor(a) for a in (logit, pred, done, reward, 10.0, mask)), asymmetry=5.0)
    weight = np.where(pred > reward, 5.0, 1.0)
    np.testing.assert_allclose(r.item(), np.sum((weight * (pred - reward) ** 2)[mask]) / mask.sum(), rtol=1e-12)
    # an M that overpays by 0.5 everywhere costs 5 x 0.25, one that underpays by 0.5 costs 0.25
    over, under = (reward_done_loss(*(torch.tensor(a) for a in (logit, reward + s, done, reward)), 10.0,
                                    asymmetry=5.0)[1].item() for s in (0.5, -0.5))
    np.testing.assert_allclose([over, under], [1.25, 0.25], rtol=1e-12)


@pytest.mark.parametrize("layer_norm", [0, 1])
def test_the_heads_come_last_in_rnn_json_and_the_originals_loader_skips_them(tmp_path, layer_norm):
    torch.manual_seed(0)
    plain = MDNRNN(tiny_hps(use_layer_norm=layer_norm))
    torch.manual_seed(0)
    heads = MDNRNN(tiny_hps(use_layer_norm=layer_norm, reward_done=1))
    plain.save_json(tmp_path / "plain.json")
    heads.save_json(tmp_path / "heads.json")
    arrays = tfjson.read_arrays(tmp_path / "heads.json")
    assert [a.shape for a in arrays] == plain.tf_shapes() + [(16, 2), (2,)]
    # the original's set_model_params: one array per variable of ITS graph, in order; the rest unread
    original = tfjson.read_arrays(tmp_path / "plain.json")
    for mine, theirs in zip(arrays, original):  # same initialisation: the heads draw after M's own weights
        np.testing.assert_array_equal(mine, theirs)
    assert hps_of(tmp_path / "heads.json").reward_done == 1 and hps_of(tmp_path / "plain.json").reward_done == 0
    loaded = MDNRNN.from_json(tmp_path / "heads.json")
    assert loaded.hps.use_layer_norm == layer_norm and loaded.hps.rnn_size == 16
    np.testing.assert_array_equal(loaded.head_w.detach().numpy(), np.round(heads.head_w.detach().numpy() * 1e4) / 1e4)
    assert not hasattr(MDNRNN.from_json(tmp_path / "plain.json"), "head_w")


def test_dream_step_is_mdn_step_plus_the_heads_of_the_same_output():
    torch.manual_seed(1)
    rnn = MDNRNN(tiny_hps(reward_done=1))
    z, a = np.random.default_rng(0).normal(size=32), np.array([0.1, 0.5, 0.0])
    logmix, mean, logstd, reward, done_logit, state = dream_step(rnn, z, a, rnn_init_state(rnn))
    expected = mdn_step(rnn, z, a, rnn_init_state(rnn))
    for got, want in zip((logmix, mean, logstd, state.h), (*expected[:3], expected[3].h)):
        np.testing.assert_array_equal(got, want)
    h = state.h[0].astype(np.float64)
    w, b = rnn.head_w.detach().numpy(), rnn.head_b.detach().numpy()
    np.testing.assert_allclose([done_logit, reward], h @ w + b, rtol=1e-5, atol=1e-6)


def make_rewards(path, n=6, frames=21):
    """make_series plus a reward that the action decides (gas - brake) and a done after large steer."""
    action, mu, logvar = make_series(path, n, frames)
    a = action.astype(np.float32)
    reward, done = a[..., 1] - a[..., 2], a[..., 0] > 0.8
    np.savez_compressed(path, action=action, mu=mu, logvar=logvar, reward=reward, done=done)
    return action, mu, logvar, reward, done


def test_rnn_train_learns_the_heads_and_refuses_a_series_without_rewards(tmp_path):
    action, mu, logvar, reward, done = make_rewards(tmp_path / "series.npz")
    run_script("rnn_train.py", *TINY, "--num_steps", "80", "--series_path", "series.npz", "--reward_done", "1",
               cwd=tmp_path)
    trained = MDNRNN.from_json(tmp_path / "tf_rnn/rnn.json", tiny_hps())
    torch.manual_seed(0)
    initial = MDNRNN(tiny_hps(reward_done=1))
    x = torch.tensor(np.concatenate([mu[:, :-1], action[:, :-1]], 2), dtype=torch.float32)
    targets = [torch.tensor(a[:, :-1]) for a in (done, reward)]
    with torch.no_grad():
        before, after = (reward_done_loss(*m(x, heads=True)[4:], *targets, 10.0) for m in (initial, trained))
    assert after[1] < 0.5 * before[1] and after[0] < before[0]

    make_series(tmp_path / "plain.npz")
    proc = run_script("rnn_train.py", *TINY, "--series_path", "plain.npz", "--reward_done", "1", cwd=tmp_path,
                      check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        "rnn_train.py: error: plain.npz: no reward and done for --reward_done 1 (record the episodes with "
        "extract.py --record_rewards 1, then run series.py again)")


def expectile(r, k):
    """The constant c that minimises mean(w (c - r)^2), w = k where c > r else 1: the mean at k = 1."""
    lo, hi = r.min(), r.max()
    for _ in range(60):
        c = (lo + hi) / 2
        lo, hi = (lo, c) if np.sum(np.where(c > r, k, 1.0) * (c - r)) > 0 else (c, hi)
    return c


def test_rnn_train_with_an_asymmetric_reward_cost_predicts_less(tmp_path):
    """A reward that M cannot foresee (3 with probability 0.3, else 0): squared error learns about its
    mean, --reward_asymmetry 5 about its lower expectile, from the same start."""
    action, mu, logvar = make_series(tmp_path / "series.npz", n=6)
    reward = 3.0 * (np.random.default_rng(0).random(action.shape[:2]) < 0.3)
    np.savez_compressed(tmp_path / "series.npz", action=action, mu=mu, logvar=logvar, reward=reward.astype(np.float32),
                        done=np.zeros(action.shape[:2], bool))
    x = torch.tensor(np.concatenate([mu[:, :-1], action[:, :-1]], 2), dtype=torch.float32)
    for k in (1.0, 5.0):
        run_script("rnn_train.py", *TINY, "--num_steps", "100", "--learning_rate", "0.01", "--series_path",
                   "series.npz", "--reward_done", "1", "--reward_asymmetry", str(k), "--model_save_path", str(k),
                   cwd=tmp_path)
        with torch.no_grad():
            predicted = MDNRNN.from_json(tmp_path / str(k) / "rnn.json", tiny_hps())(x, heads=True)[5].mean().item()
        assert abs(predicted - expectile(reward[:, :-1].ravel(), k)) < 0.15, (k, predicted)  # 0.75, then 0.19


def test_without_the_option_a_series_with_rewards_trains_the_originals_m(tmp_path):
    make_series(tmp_path / "plain.npz")
    make_rewards(tmp_path / "rewards.npz")
    for name in ("plain", "rewards"):
        run_script("rnn_train.py", *TINY, "--num_steps", "3", "--series_path", f"{name}.npz",
                   "--model_save_path", name, cwd=tmp_path)
    assert (tmp_path / "plain/rnn.json").read_bytes() == (tmp_path / "rewards/rnn.json").read_bytes()
    assert len(tfjson.read_arrays(tmp_path / "plain/rnn.json")) == 4


def test_init_from_an_m_without_heads_keeps_its_weights_and_starts_the_heads_fresh(tmp_path):
    """rnn_train.py --reward_done 1 --init_from the original's M (no head arrays): M's arrays load,
    the heads start from the initialisation at --seed (it refused the file before)."""
    make_series(tmp_path / "plain.npz")
    make_rewards(tmp_path / "series.npz")
    run_script("rnn_train.py", *TINY, "--num_steps", "3", "--series_path", "plain.npz", "--model_save_path", "plain",
               cwd=tmp_path)
    proc = run_script("rnn_train.py", *TINY, "--num_steps", "0", "--series_path", "series.npz", "--reward_done", "1",
                      "--init_from", "plain/rnn.json", "--model_save_path", "heads", cwd=tmp_path)
    assert "the heads start fresh" in proc.stdout
    plain, heads = (tfjson.read_arrays(tmp_path / f"{name}/rnn.json") for name in ("plain", "heads"))
    assert len(plain) == 4 and len(heads) == 6
    for a, b in zip(plain, heads):
        np.testing.assert_array_equal(a, b)
    torch.manual_seed(0)
    fresh = MDNRNN(tiny_hps(reward_done=1))  # the heads of the initialisation at --seed 0
    np.testing.assert_array_equal(heads[4], tfjson.quantize([fresh.head_w.detach().numpy()])[0])
    # a file with heads still loads whole, and a file of another size is still refused
    run_script("rnn_train.py", *TINY, "--num_steps", "0", "--series_path", "series.npz", "--reward_done", "1",
               "--init_from", "heads/rnn.json", "--model_save_path", "again", cwd=tmp_path)
    assert tfjson.read_arrays(tmp_path / "again/rnn.json")[4].tolist() == heads[4].tolist()
    proc = run_script("rnn_train.py", *TINY[:1], "8", *TINY[2:], "--num_steps", "0", "--series_path", "series.npz",
                      "--reward_done", "1", "--init_from", "plain/rnn.json", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "plain/rnn.json: array" in proc.stderr


def test_the_reward_after_an_episodes_first_done_is_not_learnt(tmp_path):
    """The recording runs on past the env's end and repeats the end's reward (-100 a step off the
    playfield): rnn_train.py learns the reward up to each episode's first done only, so what
    follows it does not change M; the done labels are all learnt."""
    done = torch.tensor([[0, 0, 1, 1, 0, 1], [0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    assert episode_steps(done).tolist() == [[True, True, True, False, False, False], [True] * 6]
    _, r = reward_done_loss(torch.zeros(2, 6), torch.zeros(2, 6), done, torch.full((2, 6), 2.0), 10.0,
                            episode_steps(done))
    assert r.item() == 4.0
    action, mu, logvar, reward, done = make_rewards(tmp_path / "series.npz")
    done[:, 10:] = False
    done[:3, 10:] = True  # three episodes end at step 10 and run on
    for name, after in (("a", -100.0), ("b", 0.0)):
        r = reward.copy()
        r[:3, 11:] = after
        np.savez_compressed(tmp_path / f"{name}.npz", action=action, mu=mu, logvar=logvar, reward=r, done=done)
        run_script("rnn_train.py", *TINY, "--num_steps", "3", "--series_path", f"{name}.npz", "--reward_done", "1",
                   "--model_save_path", name, cwd=tmp_path)
    assert (tmp_path / "a/rnn.json").read_bytes() == (tmp_path / "b/rnn.json").read_bytes()
