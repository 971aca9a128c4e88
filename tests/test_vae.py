"""ConvVAE against an independent numpy implementation of the TF original's graph and JSON."""
import json

import numpy as np
import pytest
import torch

from plumbing.cli import UserError
from vae.vae import ConvVAE

# The original's variables in creation order, TF shapes (tf_original.md section 4).
TF_SHAPES = [(4, 4, 3, 32), (32,), (4, 4, 32, 64), (64,), (4, 4, 64, 128), (128,), (4, 4, 128, 256), (256,),
             (1024, 32), (32,), (1024, 32), (32,), (32, 1024), (1024,),
             (5, 5, 128, 1024), (128,), (5, 5, 64, 128), (64,), (6, 6, 32, 64), (32,), (6, 6, 3, 32), (3,)]


def tf_conv2d_valid(x, kernel, bias, stride=2):
    """tf.layers.conv2d, padding 'valid': x NHWC, kernel HWIO (cross-correlation)."""
    n, h, w, _ = x.shape
    kh, kw, _, _ = kernel.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, oh, ow, kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            out += x[:, i:i + stride * oh:stride, j:j + stride * ow:stride, :] @ kernel[i, j]
    return out + bias


def tf_conv2d_transpose_valid(x, kernel, bias, stride=2):
    """tf.layers.conv2d_transpose, padding 'valid': the gradient of conv2d with respect to its
    input; kernel (kh, kw, out, in); output size (in - 1) * stride + k."""
    n, h, w, _ = x.shape
    kh, kw, cout, _ = kernel.shape
    out = np.zeros((n, (h - 1) * stride + kh, (w - 1) * stride + kw, cout))
    for i in range(kh):
        for j in range(kw):
            out[:, i:i + stride * h:stride, j:j + stride * w:stride, :] += x @ kernel[i, j].T
    return out + bias


def relu(a):
    return np.maximum(a, 0.0)


def tf_encode(w, x):
    h = relu(tf_conv2d_valid(x, w[0], w[1]))
    h = relu(tf_conv2d_valid(h, w[2], w[3]))
    h = relu(tf_conv2d_valid(h, w[4], w[5]))
    h = relu(tf_conv2d_valid(h, w[6], w[7]))
    h = h.reshape(len(x), 2 * 2 * 256)  # NHWC row-major, as tf.reshape
    return h @ w[8] + w[9], h @ w[10] + w[11]


def tf_decode(w, z):
    h = (z @ w[12] + w[13]).reshape(len(z), 1, 1, 1024)
    h = relu(tf_conv2d_transpose_valid(h, w[14], w[15]))
    h = relu(tf_conv2d_transpose_valid(h, w[16], w[17]))
    h = relu(tf_conv2d_transpose_valid(h, w[18], w[19]))
    return 1.0 / (1.0 + np.exp(-tf_conv2d_transpose_valid(h, w[20], w[21])))


def random_json_params(rng):
    """JSON-scale ints: glorot-sized kernels and small biases, as a trained file might hold."""
    params = []
    for shape in TF_SHAPES:
        if len(shape) == 1:
            a = rng.normal(0, 0.05, shape)
        else:
            fan = np.prod(shape[:-2], dtype=int) * (shape[-2] + shape[-1])
            a = rng.uniform(-1, 1, shape) * np.sqrt(6.0 / fan)
        params.append(np.round(a * 10000).astype(int).tolist())
    return params


def write_tf_json(path, params):
    """The original's writer, reimplemented independently."""
    with open(path, "w") as f:
        json.dump(params, f, sort_keys=True, indent=0, separators=(",", ": "))


@pytest.fixture(scope="module")
def tf_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("vae") / "vae.json"
    params = random_json_params(np.random.default_rng(0))
    write_tf_json(path, params)
    return path, [np.array(p, dtype=np.float64) / 10000.0 for p in params]


def test_shapes_and_parameter_count():
    vae = ConvVAE()
    assert vae.tf_shapes() == TF_SHAPES
    assert sum(p.numel() for p in vae.parameters()) == 4348547
    x = np.random.default_rng(1).random((3, 64, 64, 3), dtype=np.float32)
    assert vae.encode(x).shape == (3, 32)
    assert vae.decode(np.zeros((3, 32), np.float32)).shape == (3, 64, 64, 3)


def test_json_import_matches_tf_graph_in_numpy(tf_json):
    path, weights = tf_json
    vae = ConvVAE()
    vae.load_json(path)
    x = np.random.default_rng(2).random((2, 64, 64, 3))
    mu_ref, logvar_ref = tf_encode(weights, x)
    mu, logvar = vae.encode_mu_logvar(x.astype(np.float32))
    assert np.abs(mu - mu_ref).max() <= 1e-4 and np.abs(logvar - logvar_ref).max() <= 1e-4
    assert np.abs(mu_ref).max() > 0.05  # the comparison is not between near-zero numbers
    z = np.random.default_rng(3).normal(size=(2, 32)) * 4.0
    y_ref = tf_decode(weights, z)
    y = vae.decode(z.astype(np.float32))
    assert np.abs(y - y_ref).max() <= 1e-4
    flipped = list(weights)  # a spatially flipped transposed-conv kernel would be caught
    flipped[18] = weights[18][::-1, ::-1]
    assert np.abs(y - tf_decode(flipped, z)).max() > 1e-3


def test_json_round_trip_is_byte_identical(tf_json, tmp_path):
    path, _ = tf_json
    vae = ConvVAE()
    vae.load_json(path)
    vae.save_json(tmp_path / "out.json")
    assert (tmp_path / "out.json").read_bytes() == path.read_bytes()
    params, shapes, names = vae.get_model_params()
    assert params == json.loads(path.read_text())
    assert shapes == TF_SHAPES and names[0] == "enc_conv1/kernel:0" and names[-1] == "dec_deconv4/bias:0"


def test_save_json_quantizes_in_float32_like_the_original(tmp_path):
    """The original computed np.round(p * 10000) on float32 variables: a few weights round
    differently than in float64. Fill the network with such weights and compare files."""
    rng = np.random.default_rng(4)
    vae = ConvVAE()
    arrays = []
    for shape in TF_SHAPES:
        w = (rng.normal(size=shape) * 0.05).astype(np.float32)
        arrays.append(w)
    vae.set_tf_arrays(arrays)
    expected = [np.round(w * 10000).astype(int).tolist() for w in arrays]  # numpy float32 semantics
    in_float64 = [np.round(w.astype(np.float64) * 10000).astype(int).tolist() for w in arrays]
    assert expected != in_float64  # the case actually occurs in this data
    write_tf_json(tmp_path / "expected.json", expected)
    vae.save_json(tmp_path / "vae.json")
    assert (tmp_path / "vae.json").read_bytes() == (tmp_path / "expected.json").read_bytes()


def test_set_model_params_divides_by_10000_and_checks_shapes():
    vae = ConvVAE()
    params = random_json_params(np.random.default_rng(5))
    vae.set_model_params(params)
    assert vae.get_model_params()[0] == params
    with pytest.raises(ValueError, match="enc_conv1/kernel"):
        vae.set_model_params([np.zeros((4, 4, 3, 31))] + params[1:])
    vae.set_random_params(0.1)
    assert vae.get_model_params()[0] != params


def test_load_json_rejects_a_foreign_file(tmp_path):
    bad = tmp_path / "rnn.json"
    write_tf_json(bad, [[1, 2], [3]])
    with pytest.raises(UserError, match="rnn.json"):
        ConvVAE().load_json(bad)


def test_loss_matches_its_formula():
    rng = np.random.default_rng(6)
    vae = ConvVAE(kl_tolerance=0.5)
    x = rng.random((4, 64, 64, 3))
    y = rng.random((4, 64, 64, 3))
    mu = rng.normal(0, 1.5, (4, 32))
    mu[0] *= 0.01  # sample 0 has a KL below the floor of 16, the others above
    logvar = rng.normal(0, 0.3, (4, 32))
    kl = -0.5 * np.sum(1 + logvar - mu ** 2 - np.exp(logvar), axis=1)
    assert kl[0] < 16 < kl[1:].min()
    r_ref = np.mean(np.sum((x - y) ** 2, axis=(1, 2, 3)))
    kl_ref = np.mean(np.maximum(kl, 0.5 * 32))
    loss, r_loss, kl_loss = vae.loss(*(torch.tensor(a) for a in (x, y, mu, logvar)))
    assert r_loss.item() == pytest.approx(r_ref, rel=1e-12)
    assert kl_loss.item() == pytest.approx(kl_ref, rel=1e-12)
    assert loss.item() == pytest.approx(r_ref + kl_ref, rel=1e-12)


def test_a_v_of_another_z_size_loads_at_its_own_size(tmp_path):
    """vae.json says V's z_size: ConvVAE.from_json builds a V of the file's size (series.py and
    the agent load V this way)."""
    torch.manual_seed(0)
    ConvVAE(z_size=16).save_json(tmp_path / "vae.json")
    vae = ConvVAE.from_json(tmp_path / "vae.json", batch_size=1)
    assert vae.z_size == 16 and vae.encode_tensor(torch.zeros(2, 64, 64, 3))[0].shape == (2, 16)
