"""rnn/rnn.py against TF's definitions, written here in plain numpy, and the original's rnn.json."""
import json

import numpy as np
import pytest
import torch
from conftest import REPO

import config
from rnn import rnn as R

torch.set_num_threads(1)


# --- an independent numpy model of the original (TF LayerNormBasicLSTMCell + MDN head) -----------

def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def logsumexp(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def tf_layer_norm(x, gamma, beta):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * gamma + beta


def tf_cell(x, c, h, kernel, bias=None, ln=None):
    """TF's cell: [x, h] @ kernel (+ bias), gates i, j, f, o, forget bias +1; ln = 5 (gamma, beta)."""
    concat = np.concatenate([x, h]) @ kernel
    if bias is not None:
        concat = concat + bias
    i, j, f, o = np.split(concat, 4)
    if ln:
        i, j, f, o = (tf_layer_norm(g, *ln[k]) for k, g in enumerate((i, j, f, o)))
    c = c * sigmoid(f + 1.0) + sigmoid(i) * np.tanh(j)
    if ln:
        c = tf_layer_norm(c, *ln[4])
    return c, np.tanh(c) * sigmoid(o)


def tf_mdn(h, output_w, output_b):
    out = (h @ output_w + output_b).reshape(32, 15)  # tf.reshape(output, [-1, KMIX * 3])
    logmix, mean, logstd = out[:, :5], out[:, 5:10], out[:, 10:]
    return logmix - logsumexp(logmix, 1), mean, logstd


def tf_json_arrays(path):
    with open(path) as f:
        return [np.array(a, dtype=np.float64) / 10000.0 for a in json.load(f)]


# --- the original's trained rnn.json ---------------------------------------------------------------

def test_rnn_json_check_values(tf_models):
    """The spec's bias block means (x1e-4) of the trained file, raw and as our model holds them."""
    with open(tf_models / "rnn/rnn.json") as f:
        raw = json.load(f)
    expected = [375.3, 7.0, 36.6, 783.5]  # i, j, f, o
    assert [np.shape(a) for a in raw] == [(256, 480), (480,), (291, 1024), (1024,)]
    np.testing.assert_allclose(np.array(raw[3]).reshape(4, 256).mean(1), expected, atol=0.05)
    rnn = R.MDNRNN(R.hps_sample)
    rnn.load_json(tf_models / "rnn/rnn.json")
    np.testing.assert_allclose(rnn.bias.detach().numpy().reshape(4, 256).mean(1) * 1e4, expected, atol=0.05)
    assert sum(p.numel() for p in rnn.parameters()) == 422368


@pytest.mark.parametrize("which", ["shipped", "original"])
def test_trained_rnn_matches_tf_numpy_reference(which, request):
    """40 steps of random z/a through trained weights (the shipped M, and the original's when
    ../shared is present): h, c and the MDN outputs agree within 1e-4 along all three paths
    (numpy hot path, torch single step, fused sequence LSTM)."""
    path = REPO / "rnn/rnn.json" if which == "shipped" else request.getfixturevalue("tf_models") / "rnn/rnn.json"
    output_w, output_b, kernel, bias = tf_json_arrays(path)
    rnn = R.MDNRNN(R.hps_sample)
    rnn.load_json(path)
    rng = np.random.RandomState(0)
    zs, actions = rng.randn(40, 32), rng.uniform(-1, 1, (40, 3))
    c, h = np.zeros(256), np.zeros(256)
    hot, step = R.rnn_init_state(rnn), R.rnn_init_state(rnn)
    expected = []
    for z, a in zip(zs, actions):
        c, h = tf_cell(np.concatenate([z, a]), c, h, kernel, bias)
        mdn = tf_mdn(h, output_w, output_b)
        expected.append(mdn)
        hot = R.rnn_next_state(rnn, z, a, hot)
        *ours, step = R.mdn_step(rnn, z, a, step)
        for state in (hot, step):
            assert state.c.shape == state.h.shape == (1, 256)
            np.testing.assert_allclose(state.c[0], c, atol=1e-4)
            np.testing.assert_allclose(state.h[0], h, atol=1e-4)
        for got, want in zip(ours, mdn):
            assert got.shape == (32, 5)
            np.testing.assert_allclose(got, want, atol=1e-4)
    x = torch.tensor(np.concatenate([zs, actions], 1)[None], dtype=torch.float32)
    with torch.no_grad():
        *seq, final = rnn(x)
    np.testing.assert_allclose(final.c[0].numpy(), c, atol=1e-4)
    np.testing.assert_allclose(final.h[0].numpy(), h, atol=1e-4)
    for k in range(3):
        np.testing.assert_allclose(seq[k][0].numpy(), np.stack([e[k] for e in expected]), atol=1e-4)


def test_rnn_json_round_trip_is_byte_identical(tf_models, tmp_path):
    rnn = R.MDNRNN()
    rnn.load_json(tf_models / "rnn/rnn.json")
    rnn.save_json(tmp_path / "rnn.json")
    assert (tmp_path / "rnn.json").read_bytes() == (tf_models / "rnn/rnn.json").read_bytes()


def test_load_json_rejects_a_foreign_file(tmp_path):
    from plumbing.cli import UserError

    (tmp_path / "vae.json").write_text("[[1, 2], [3]]")
    with pytest.raises(UserError, match="vae.json: expected a list of 4 weight arrays"):
        R.MDNRNN().load_json(tmp_path / "vae.json")


# --- the cell options (random weights) --------------------------------------------------------------

def _randomized(hps, seed=0):
    torch.manual_seed(seed)
    rnn = R.MDNRNN(hps)
    if hps.use_layer_norm:
        with torch.no_grad():
            rnn.ln_gamma.uniform_(0.5, 1.5)
            rnn.ln_beta.uniform_(-0.5, 0.5)
    return rnn


def test_layer_norm_cell_matches_tf_and_its_json_order(tmp_path):
    hps = R.hps_sample._replace(use_layer_norm=1)
    rnn = _randomized(hps)
    rnn.save_json(tmp_path / "ln.json")
    arrays = tf_json_arrays(tmp_path / "ln.json")
    assert [a.shape for a in arrays] == [(256, 480), (480,), (291, 1024)] + [(256,)] * 10
    output_w, output_b, kernel, *norms = arrays
    ln = [(norms[2 * k], norms[2 * k + 1]) for k in range(5)]  # input, transform, forget, output, state
    rng = np.random.RandomState(1)
    x = rng.randn(12, 35)
    c, h = np.zeros(256), np.zeros(256)
    for t in range(12):
        c, h = tf_cell(x[t], c, h, kernel, ln=ln)
    loaded = R.MDNRNN(hps)
    loaded.load_json(tmp_path / "ln.json")
    with torch.no_grad():
        logmix, mean, logstd, final = loaded(torch.tensor(x[None], dtype=torch.float32))
    np.testing.assert_allclose(final.h[0].numpy(), h, atol=1e-4)
    np.testing.assert_allclose(final.c[0].numpy(), c, atol=1e-4)
    np.testing.assert_allclose(logmix[0, -1].numpy(), tf_mdn(h, output_w, output_b)[0], atol=1e-4)
    state = R.rnn_init_state(loaded)
    for t in range(12):
        state = R.rnn_next_state(loaded, x[t, :32], x[t, 32:], state)
    np.testing.assert_allclose(state.h[0], h, atol=1e-4)


def test_fused_sequence_equals_single_steps_and_batched_step():
    rnn = _randomized(R.hps_model)
    x = torch.randn(3, 25, 35)
    with torch.no_grad():
        logmix, mean, logstd, final = rnn(x)
        state = rnn.initial_state(3)
        for t in range(25):
            out, state = rnn.step(x[:, t], state)
        step_mdn = rnn.mdn(out)
    torch.testing.assert_close(state.h, final.h, atol=1e-5, rtol=0)
    torch.testing.assert_close(state.c, final.c, atol=1e-5, rtol=0)
    for a, b in zip(step_mdn, (logmix[:, -1], mean[:, -1], logstd[:, -1])):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(logmix.exp().sum(-1), torch.ones(3, 25, 32))


def test_gradients_flow_to_one_set_of_weights():
    rnn = _randomized(R.hps_model)
    logmix, mean, logstd, _ = rnn(torch.randn(2, 5, 35))
    R.mdn_loss(logmix, mean, logstd, torch.randn(2, 5, 32)).backward()
    assert [n for n, _ in rnn.named_parameters()] == ["output_w", "output_b", "kernel", "bias"]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in rnn.parameters())


def test_dropouts_follow_their_flags():
    x = torch.randn(2, 10, 35)
    base = _randomized(R.hps_model)
    for flag in ("use_recurrent_dropout", "use_input_dropout", "use_output_dropout"):
        keep = flag.replace("use_", "").replace("dropout", "dropout_prob")
        same = _randomized(R.hps_model._replace(**{flag: 1, keep: 1.0}))
        noisy = _randomized(R.hps_model._replace(**{flag: 1, keep: 0.5}))
        with torch.no_grad():
            torch.testing.assert_close(same(x)[1], base(x)[1])
            assert not torch.allclose(noisy(x)[1], noisy(x)[1])


# --- loss, step API, sampling -------------------------------------------------------------------------

def test_mdn_loss_matches_its_formula():
    rng = np.random.RandomState(2)
    logits, mean, logstd, y = rng.randn(4, 6, 32, 5), rng.randn(4, 6, 32, 5), rng.randn(4, 6, 32, 5) * 0.5, rng.randn(4, 6, 32)
    logmix = logits - logsumexp(logits, -1)
    v = logmix - 0.5 * ((y[..., None] - mean) / np.exp(logstd)) ** 2 - logstd - np.log(np.sqrt(2 * np.pi))
    expected = -logsumexp(v, -1).mean()
    got = R.mdn_loss(*(torch.tensor(a) for a in (logmix, mean, logstd, y)))
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_hyperparameters_are_the_originals():
    """The spec's values (tf_original.md: rnn/rnn.py's default_hps, rnn_train.py's, model.py's hps_sample)."""
    assert (R.MODE_ZCH, R.MODE_ZC, R.MODE_Z, R.MODE_Z_HIDDEN, R.MODE_ZH) == (0, 1, 2, 3, 4)
    hps = R.default_hps()
    assert (hps.num_steps, hps.max_seq_len, hps.rnn_size, hps.num_mixture, hps.batch_size) == (2000, 1000, 256, 5, 100)
    train = config.RNNConfig()  # rnn_train.py's own default_hps
    assert (train.num_steps, train.max_seq_len) == (4000, 999)
    assert (R.hps_sample.batch_size, R.hps_sample.max_seq_len, R.hps_sample.is_training,
            R.hps_sample.use_recurrent_dropout) == (1, 1, 0, 0)
    assert [R.rnn_output_size(m) for m in range(5)] == [544, 288, 32, 32, 288]


def test_batched_features_are_the_single_features_row_by_row():
    rnn = _randomized(R.hps_sample)
    rng = np.random.RandomState(1)
    states = [R.rnn_next_state(rnn, rng.randn(32), rng.uniform(-1, 1, 3), R.rnn_init_state(rnn)) for _ in range(3)]
    zs = rng.randn(3, 32)
    batch = R.LSTMStateTuple(np.concatenate([s.c for s in states]), torch.from_numpy(np.concatenate([s.h for s in states])))
    for mode in range(5):
        rows = R.rnn_output(batch, zs, mode)
        assert rows.shape == (3, R.rnn_output_size(mode))
        for k in range(3):
            np.testing.assert_array_equal(rows[k], R.rnn_output(states[k], zs[k], mode))


def test_get_pi_idx():
    pdf = np.array([0.1, 0.2, 0.3, 0.4])
    assert [R.get_pi_idx(x, pdf) for x in (0.0, 0.1, 0.1001, 0.6, 0.61, 1.0)] == [0, 0, 1, 2, 3, 3]
    assert R.get_pi_idx(1.0, np.array([0.5, 0.4999999])) == 1  # the original's -1: the last one


def test_sample_z_draws_like_the_original():
    """One rand() per dimension picks the component, then randn(32) * sqrt(temperature)."""
    rng = np.random.RandomState(3)
    logmix, mean, logstd = rng.randn(32, 5), rng.randn(32, 5), rng.randn(32, 5) * 0.3
    for temperature in (0.5, 1.0, 2.0):
        ref = np.random.RandomState(7)
        pdf = np.exp(logmix / temperature)
        pdf /= pdf.sum(1, keepdims=True)
        idx = [int(np.argmax(np.cumsum(p) >= ref.rand())) for p in pdf]
        expected = mean[range(32), idx] + np.exp(logstd[range(32), idx]) * ref.randn(32) * np.sqrt(temperature)
        got = R.sample_z(logmix, mean, logstd, temperature, np.random.RandomState(7))
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        np.random.seed(7)  # the module-level stream, as the original used
        np.testing.assert_allclose(R.sample_z(logmix, mean, logstd, temperature), expected, rtol=1e-12)
    assert R.sample_z(logmix, mean, logstd, 1.0, np.random.default_rng(0)).shape == (32,)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sampling_statistics(temperature):
    """Component frequencies follow softmax(logmix / T); the spread within a component is T * std^2."""
    weights = np.array([0.1, 0.2, 0.3, 0.15, 0.25])
    logmix = np.tile(np.log(weights), (32, 1))
    mean = np.tile(np.arange(5) * 100.0, (32, 1))
    logstd = np.full((32, 5), np.log(2.0))
    rng = np.random.RandomState(4)
    z = np.stack([R.sample_z(logmix, mean, logstd, temperature, rng) for _ in range(400)])  # 12800 draws
    component = np.rint(z / 100.0).astype(int)
    freq = np.bincount(component.ravel(), minlength=5) / component.size
    expected = weights ** (1 / temperature) / (weights ** (1 / temperature)).sum()
    np.testing.assert_allclose(freq, expected, atol=0.015)
    residual = z - component * 100.0
    assert residual.var() == pytest.approx(4.0 * temperature, rel=0.05)


def test_sample_sequence_is_the_tf_cell_dreaming_with_the_originals_sampling():
    """The dream against the numpy TF cell and MDN head above, sampled as the original did (one
    rand() per dimension against the cumulative softmax(logmix / T), then randn * sqrt(T))."""
    rnn = _randomized(R.hps_sample)
    output_w, output_b = rnn.output_w.detach().double().numpy(), rnn.output_b.detach().double().numpy()
    kernel, bias = rnn.kernel.detach().double().numpy(), rnn.bias.detach().double().numpy()
    actions, temperature = np.random.RandomState(5).uniform(-1, 1, (6, 3)), 0.7
    ref, z, c, h, expected = np.random.RandomState(0), np.zeros(32), np.zeros(256), np.zeros(256), []
    for a in actions:
        c, h = tf_cell(np.concatenate([z, a]), c, h, kernel, bias)
        logmix, mean, logstd = tf_mdn(h, output_w, output_b)
        pdf = np.exp(logmix / temperature)
        pdf /= pdf.sum(1, keepdims=True)
        idx = [int(np.argmax(np.cumsum(p) >= ref.rand())) for p in pdf]
        z = mean[range(32), idx] + np.exp(logstd[range(32), idx]) * ref.randn(32) * np.sqrt(temperature)
        expected.append(z)
    got = R.sample_sequence(None, rnn, rnn.hps, np.zeros(32), actions, temperature, seq_len=6, rng=np.random.RandomState(0))
    np.testing.assert_allclose(got, np.array(expected), atol=1e-4)
    assert np.ptp(got) > 1.0  # a dream that moves, not a constant


def test_an_m_of_other_sizes_loads_at_its_own_sizes(tmp_path):
    """rnn.json says M's sizes: an M trained with --rnn_size 16 --num_mixture 3 --use_layer_norm 1
    comes back at those sizes wherever it is loaded (the agent builds M from hps_of)."""
    from rnn.rnn import MDNRNN, hps_of, hps_sample

    hps = hps_sample._replace(rnn_size=16, num_mixture=3, use_layer_norm=1)
    torch.manual_seed(0)
    MDNRNN(hps).save_json(tmp_path / "rnn.json")
    found = hps_of(tmp_path / "rnn.json")
    assert (found.rnn_size, found.num_mixture, found.use_layer_norm, found.output_seq_width) == (16, 3, 1, 32)
    MDNRNN(found).load_json(tmp_path / "rnn.json")
    loaded = MDNRNN.from_json(tmp_path / "rnn.json")  # what the agent does: sizes and weights from one read
    assert loaded.hps == found
    loaded.save_json(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "rnn.json").read_bytes()
