"""model.py: the agent against an independent numpy computation of the TF original (LSTM gate
order i, j, f, o with forget bias +1, then tanh(W [z, h] + b) and the action mapping), with the
original's trained rnn.json and best.json; parameter layouts; encode_obs; simulate's semantics."""
import json
import re

import numpy as np
import pytest
from conftest import REPO, run_script

from config import EnvConfig, ModelConfig
from model import Model, controller_size, simulate
from plumbing.cli import UserError


def tf_reference_actions(rnn_json, params, zs):
    """The original's get_action over a z sequence, in plain numpy from the JSON files."""
    with open(rnn_json) as f:
        output_w, output_b, kernel, bias = (np.array(a, dtype=np.float32) / np.float32(10000) for a in json.load(f))
    assert kernel.shape == (291, 1024)
    b, W = np.asarray(params[:3]), np.asarray(params[3:]).reshape(288, 3)
    c, h = np.zeros(256, np.float32), np.zeros(256, np.float32)
    sig = lambda x: 1 / (1 + np.exp(-x))
    actions = []
    for z in zs:
        a = np.tanh(np.concatenate([z, h]) @ W + b)
        a[1] = (a[1] + 1) / 2
        a[2] = np.clip(a[2], 0, 1)
        actions.append(a)
        gates = np.concatenate([z, a, h]).astype(np.float32) @ kernel + bias
        i, j, f, o = np.split(gates, 4)
        c = c * sig(f + 1.0) + sig(i) * np.tanh(j)
        h = np.tanh(c) * sig(o)
    return np.array(actions)


@pytest.mark.parametrize("which", ["shipped", "original"])
def test_get_action_matches_the_tf_original(which, request):
    """The agent's step against the original's math in numpy, with the controller and M this
    repository ships and with the original's (skipped when ../shared is absent)."""
    folder = REPO if which == "shipped" else request.getfixturevalue("tf_models")
    best = folder / "log" / ("carracing.cma.4.16.best.json" if which == "shipped" else "carracing.cma.16.64.best.json")
    params = json.loads(best.read_text())[0]
    model = Model(load_model=False)
    model.rnn.load_json(str(folder / "rnn" / "rnn.json"))
    model.load_model(str(best))
    rng = np.random.default_rng(0)
    zs = rng.normal(size=(300, 32)) * 1.5
    ours = []
    for z in zs:
        ours.append(model.get_action(z))
    expected = tf_reference_actions(folder / "rnn" / "rnn.json", params, zs)
    assert np.max(np.abs(np.array(ours) - expected)) <= 1e-5
    assert np.ptp(expected[:, 0]) > 0.1  # the sequence exercises the controller, not a constant
    model.reset()
    np.testing.assert_allclose(model.get_action(zs[0]), expected[0], atol=1e-6)  # reset = zero state


@pytest.mark.parametrize("mode, count", [("zh", 867), ("zc", 867), ("zch", 1635), ("z", 99), ("z_hidden", 1443)])
def test_param_counts(mode, count):
    assert controller_size(ModelConfig(exp_mode=mode)) == count


def test_flat_layouts_bias_first_then_rows():
    model = Model(load_model=False, cfg=ModelConfig(exp_mode="z"))
    params = np.arange(99.0) * 1e-3
    model.set_model_params(params)
    z = np.zeros(32)
    z[5] = 1.0  # picks row 5 of W, i.e. params[3 + 3*5 + j], plus the bias params[j]
    a = np.tanh([params[j] + params[3 + 15 + j] for j in range(3)])
    got = model.get_action(z)
    np.testing.assert_allclose(got, [a[0], (a[1] + 1) / 2, np.clip(a[2], 0, 1)])

    hidden = Model(load_model=False, cfg=ModelConfig(exp_mode="z_hidden"))
    p = np.random.default_rng(1).normal(size=1443) * 0.3
    hidden.set_model_params(p)
    z = np.random.default_rng(2).normal(size=32)
    h = np.tanh(z @ p[40:1320].reshape(32, 40) + p[:40])
    a = np.tanh(h @ p[1323:].reshape(40, 3) + p[1320:1323])
    np.testing.assert_allclose(hidden.get_action(z), [a[0], (a[1] + 1) / 2, np.clip(a[2], 0, 1)])


@pytest.mark.parametrize("mode, parts", [("zch", "ch"), ("zc", "c"), ("zh", "h"), ("z", "")])
def test_feature_modes_feed_c_and_h(mode, parts):
    """a = tanh([z, c and/or h] W + b) with W the rows of the flat parameters after the bias."""
    model = Model(load_model=False, cfg=ModelConfig(exp_mode=mode))
    params = np.random.default_rng(0).normal(size=model.param_count) * 0.1
    model.set_model_params(params)
    model.get_action(np.ones(32))  # advances the state
    state = {"c": model.state.c[0].astype(np.float64), "h": model.state.h[0].astype(np.float64)}
    assert np.abs(state["c"]).max() > 0.01 and not np.allclose(state["c"], state["h"])
    z = np.full(32, 0.5)
    x = np.concatenate([z, *(state[p] for p in parts)])
    a = np.tanh(x @ params[3:].reshape(len(x), 3) + params[:3])
    np.testing.assert_allclose(model.get_action(z), [a[0], (a[1] + 1) / 2, np.clip(a[2], 0, 1)], atol=1e-12)


def test_encode_obs_samples_z_with_np_random():
    model = Model(load_model=False)
    obs = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    np.random.seed(7)
    z, mu, logvar = model.encode_obs(obs)
    mu2, logvar2 = model.vae.encode_mu_logvar(obs[None] / 255.0)
    np.testing.assert_allclose(mu, mu2[0], atol=1e-6)
    np.testing.assert_allclose(logvar, logvar2[0], atol=1e-6)
    np.random.seed(7)
    np.testing.assert_allclose(z, mu + np.exp(logvar / 2) * np.random.randn(32))


def test_simulate_caps_seeds_once_and_returns_last_index():
    model = Model(load_model=False, cfg=ModelConfig(max_episode_length=6))
    model.init_random_model_params(stdev=0.01)
    model.make_env()
    rewards, t_list = simulate(model, train_mode=True, render_mode=False, num_episode=2, seed=3, max_len=4)
    assert t_list == [3, 3]  # max_len applies in train mode; t is the last 0-based index
    again, _ = simulate(model, train_mode=True, render_mode=False, num_episode=2, seed=3, max_len=4)
    assert again == rewards  # seeding makes it repeatable
    assert rewards[0] != rewards[1]  # one seed, consecutive (different) tracks
    _, t_list = simulate(model, train_mode=False, render_mode=False, num_episode=1, seed=3, max_len=4)
    assert t_list == [5]  # eval mode ignores max_len: the cap is max_episode_length


def test_load_model_reads_both_formats_and_rejects_bad_files(tmp_path):
    model = Model(load_model=False)
    p = np.round(np.random.default_rng(0).normal(size=867), 4).tolist()
    (tmp_path / "best.json").write_text(json.dumps([p, 900.5]))
    (tmp_path / "gen.json").write_text(json.dumps([p], indent=2))
    for name in ("best.json", "gen.json"):
        model.load_model(str(tmp_path / name))
        np.testing.assert_array_equal(model.bias, p[:3])
        np.testing.assert_array_equal(model.weight[1], p[6:9])
    (tmp_path / "short.json").write_text(json.dumps([p[:99]]))
    with pytest.raises(UserError, match="short.json: 99 parameters, but exp_mode zh needs 867"):
        model.load_model(str(tmp_path / "short.json"))
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(UserError, match="junk.json: not a controller JSON"):
        model.load_model(str(tmp_path / "junk.json"))


def test_the_agent_takes_v_and_m_at_the_sizes_of_their_files(tmp_path):
    from rnn.rnn import MDNRNN, hps_sample
    from vae.vae import ConvVAE

    ConvVAE(z_size=16).save_json(tmp_path / "vae16.json")
    ConvVAE().save_json(tmp_path / "vae32.json")
    MDNRNN(hps_sample._replace(rnn_size=8, input_seq_width=19, output_seq_width=16)).save_json(
        tmp_path / "rnn.json")
    model = Model(cfg=ModelConfig(vae_path=tmp_path / "vae16.json", rnn_path=tmp_path / "rnn.json"))
    assert model.param_count == (16 + 8 + 1) * 3 == controller_size(model.cfg, model.rnn.hps)
    with pytest.raises(UserError, match="rnn.json: an MDN-RNN of z width 16, but .*vae32.json has z_size 32"):
        Model(cfg=ModelConfig(vae_path=tmp_path / "vae32.json", rnn_path=tmp_path / "rnn.json"))


def test_the_reports_agent_gif_replays_model_py_render_at_the_same_seed(tmp_path):
    """report.agent_gif drives the episode `python model.py render <best.json> <seed>` drives."""
    from reports.report import agent_gif

    best = REPO / "log" / "carracing.cma.4.16.best.json"
    proc = run_script("model.py", "render", best, 3, "--max_episode_length", 40, "--gif_path", tmp_path / "r.gif",
                      cwd=REPO)
    rendered = float(re.search(r"terminal reward \[([-\d.e]+)\]", proc.stdout).group(1))
    cfg = ModelConfig(vae_path=REPO / "vae/vae.json", rnn_path=REPO / "rnn/rnn.json")
    shown = agent_gif(tmp_path / "agent.gif", str(best), cfg, EnvConfig(), 40, 3)
    assert shown == {"reward": round(rendered, 2), "steps": 40}
