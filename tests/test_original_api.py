"""The original's Python API, used as its scripts and a notebook use it (hardmaru/WorldModelsExperiments,
carracing/): each public name of its modules exists here (or is in the README's table of names not
kept), and its calls mean what they meant: values, shapes, defaults, and that what a user sets or
overrides is what acts."""
import importlib
import re

import numpy as np
import pytest
import torch
from conftest import REPO

torch.set_num_threads(1)

# The public names of the original's carracing/ modules (top level, then per class), as its source has them.
ORIGINAL_NAMES = {
    "es": ["compute_ranks", "compute_centered_ranks", "compute_weight_decay", "Optimizer", "BasicSGD", "SGD", "Adam",
           "CMAES", "SimpleGA", "OpenES", "PEPG"],
    "model": ["render_mode", "MODE_ZCH", "MODE_ZC", "MODE_Z", "MODE_Z_HIDDEN", "MODE_ZH", "EXP_MODE", "make_model",
              "sigmoid", "relu", "clip", "passthru", "softmax", "sample", "Model", "simulate", "main"],
    "env": ["SCREEN_X", "SCREEN_Y", "CarRacingWrapper", "make_env"],
    "vae.vae": ["reset_graph", "ConvVAE"],
    "rnn.rnn": ["MODE_ZCH", "MODE_ZC", "MODE_Z", "MODE_Z_HIDDEN", "MODE_ZH", "HyperParams", "default_hps", "hps_model",
                "hps_sample", "MDNRNN", "get_pi_idx", "sample_sequence", "rnn_init_state", "rnn_next_state",
                "rnn_output_size", "rnn_output"],
    "dream_env": ["SCREEN_X", "SCREEN_Y", "FACTOR", "initial_mu", "initial_logvar", "initial_mu_logvar", "get_pi_idx",
                  "CarRacingDream", "make_env"],
    "dream_model": ["render_mode", "MODE_ZCH", "MODE_ZC", "MODE_Z", "MODE_Z_HIDDEN", "MODE_ZH", "EXP_MODE",
                    "make_model", "sigmoid", "relu", "clip", "passthru", "softmax", "sample", "Model", "simulate",
                    "main"],
    "train": ["PRECISION", "initialize_settings", "sprint", "OldSeeder", "Seeder", "encode_solution_packets",
              "decode_solution_packet", "encode_result_packet", "decode_result_packet", "worker", "slave",
              "send_packets_to_slaves", "receive_packets_from_slaves", "evaluate_batch", "master", "main", "mpi_fork"],
    "extract": ["MAX_FRAMES", "MAX_TRIALS", "render_mode", "DIR_NAME", "model", "total_frames"],
}
ORIGINAL_METHODS = {
    ("es", cls): ["rms_stdev", "ask", "tell", "current_param", "set_mu", "best_param", "result"]
    for cls in ("CMAES", "SimpleGA", "OpenES", "PEPG")
} | {
    ("model", "Model"): ["make_env", "reset", "encode_obs", "get_action", "set_model_params", "load_model",
                         "get_random_model_params", "init_random_model_params"],
    ("vae.vae", "ConvVAE"): ["encode", "encode_mu_logvar", "decode", "get_model_params", "get_random_model_params",
                             "set_model_params", "load_json", "save_json", "set_random_params", "save_model",
                             "load_checkpoint", "close_sess"],
    ("rnn.rnn", "MDNRNN"): ["build_model", "init_session", "close_sess", "get_model_params", "get_random_model_params",
                            "set_random_params", "set_model_params", "load_json", "save_json"],
    ("dream_env", "CarRacingDream"): ["decode_obs", "seed", "reset", "step", "render"],
}
# Names whose keeping would be wrong: each is a row of the README's table ("What is faithful, and what we changed").
NOT_KEPT = {
    ("vae.vae", "ConvVAE.save_model"), ("vae.vae", "ConvVAE.load_checkpoint"), ("rnn.rnn", "MDNRNN.build_model"),
    ("es", "SimpleGA.best_param"),  # the original's attribute hides its method: it is there, as an array
    ("train", "initialize_settings"), ("train", "sprint"), ("train", "OldSeeder"), ("train", "Seeder"),
    ("train", "worker"), ("train", "slave"), ("train", "send_packets_to_slaves"),
    ("train", "receive_packets_from_slaves"), ("train", "evaluate_batch"), ("train", "master"), ("train", "main"),
    ("train", "mpi_fork"),
    ("extract", "MAX_FRAMES"), ("extract", "MAX_TRIALS"), ("extract", "render_mode"), ("extract", "DIR_NAME"),
    ("extract", "model"), ("extract", "total_frames"),
}


def _readme_table():
    text = (REPO / "README.md").read_text()
    start = text.index("### The original's names not kept")
    return text[start:text.index("\n#", start + 1)]


def test_every_public_name_of_the_original_is_here_or_in_the_readmes_table():
    table = _readme_table()
    missing = []
    for module, names in ORIGINAL_NAMES.items():
        mod = importlib.import_module(module)
        for name in names:
            if (module, name) in NOT_KEPT:
                assert f"`{module}.{name}`" in table, f"{module}.{name} is not kept: the README's table must say so"
            elif not hasattr(mod, name):
                missing.append(f"{module}.{name}")
    for (module, cls), names in ORIGINAL_METHODS.items():
        klass = getattr(importlib.import_module(module), cls)
        for name in names:
            if (module, f"{cls}.{name}") in NOT_KEPT:
                assert f"`{module}.{cls}.{name}`" in table, f"{module}.{cls}.{name}: not in the README's table"
            elif not callable(getattr(klass, name, None)):
                missing.append(f"{module}.{cls}.{name}")
    assert not missing, missing


def test_train_and_extract_keep_the_names_a_user_imports():
    """train.py and extract.py run MPI at import in the original; what a user imports from train.py is
    the packet code (the rest is in the README's table); importing ours starts nothing."""
    import train
    for name in ("PRECISION", "encode_solution_packets", "decode_solution_packet", "encode_result_packet",
                 "decode_result_packet"):
        assert hasattr(train, name)
    assert len(re.findall(r"`extract\.\w+`", _readme_table())) == 6


# --- es.py --------------------------------------------------------------------------------------

def test_cmaes_takes_the_originals_arguments_in_its_order():
    from es import CMAES
    es = CMAES(20, sigma_init=0.1, popsize=64)  # the original train.py's call
    assert (es.num_params, es.sigma_init, es.popsize, es.weight_decay) == (20, 0.1, 64, 0.01)
    es = CMAES(20, 0.2, 8)
    assert (es.sigma_init, es.popsize, es.weight_decay) == (0.2, 8, 0.01)
    assert es.es.sigma0 == 0.2 and es.es.popsize == 8 and es.ask().shape == (8, 20)
    assert CMAES(5, 0.1, 8, 0.0).weight_decay == 0.0


def test_the_gradient_optimizers_move_pi_mu_and_return_the_ratio():
    from es import SGD, Adam, BasicSGD, Optimizer, OpenES

    class Pi:
        num_params, mu = 3, np.array([3.0, 0.0, 4.0])

    pi, g = Pi(), np.array([1.0, -2.0, 2.0])
    ratio = BasicSGD(pi, 0.5).update(g)
    np.testing.assert_array_equal(pi.mu, [2.5, 1.0, 3.0])
    assert ratio == pytest.approx(1.5 / 5.0)
    pi.mu = np.zeros(3)
    SGD(pi, 1.0, momentum=0.9).update(g)
    np.testing.assert_allclose(pi.mu, -0.1 * g)
    pi.mu = np.zeros(3)
    adam = Adam(pi, 0.01)
    assert isinstance(adam, Optimizer) and (adam.beta1, adam.beta2, adam.epsilon, adam.t) == (0.99, 0.999, 1e-8, 0)
    ratio = adam.update(g)  # first step: m / sqrt(v) = sign(g), a = stepsize * sqrt(1 - b2) / (1 - b1)
    a = 0.01 * np.sqrt(1 - 0.999) / (1 - 0.99)
    expected = -a * (0.01 * g) / (np.sqrt(0.001 * g * g) + 1e-8)
    np.testing.assert_allclose(pi.mu, expected, rtol=1e-12)
    assert ratio == pytest.approx(np.linalg.norm(expected) / 1e-8)
    es = OpenES(4, popsize=4)
    assert es.first_interation and isinstance(es.optimizer, Adam) and es.optimizer.pi is es


def test_simple_ga_best_param_is_the_originals_array():
    from es import PEPG, SimpleGA
    np.random.seed(0)
    ga = SimpleGA(3, popsize=10, elite_ratio=0.2)
    solutions = ga.ask()
    ga.tell(-np.sum(solutions**2, axis=1))
    best = solutions[np.argmax(-np.sum(solutions**2, axis=1))]
    np.testing.assert_array_equal(ga.best_param, best)
    np.testing.assert_array_equal(ga.result()[0], best)
    pepg = PEPG(3, popsize=4)
    assert pepg.first_interation and pepg.batch_reward.shape == (4,)
    pepg.ask()
    pepg.tell(np.arange(4.0))
    assert not pepg.first_interation


# --- rnn/rnn.py ---------------------------------------------------------------------------------

def test_hyperparams_are_the_originals_namedtuple():
    from rnn import rnn as R
    hps = R.default_hps()
    assert (hps.num_steps, hps.max_seq_len) == (2000, 1000)
    assert isinstance(hps, tuple) and R.HyperParams._fields[:2] == ("num_steps", "max_seq_len")
    # the original's hps_sample, made the original's way
    sample = hps._replace(batch_size=1, max_seq_len=1, use_recurrent_dropout=0, is_training=0)
    assert sample == R.hps_sample and sample._asdict()["batch_size"] == 1 and hps.batch_size == 100
    rnn = R.MDNRNN(sample, gpu_mode=False, reuse=True)  # the original model.py's call
    assert rnn.hps == sample
    assert R.MDNRNN(R.hps_model, True).hps.max_seq_len == 1000


def test_the_originals_default_hps_builds_our_hyperparams():
    """The original's rnn.py default_hps, verbatim: its 19 fields by keyword, then by position; our
    extensions (M's reward and done heads) come after them, off."""
    from rnn import rnn as R
    original = dict(num_steps=2000, max_seq_len=1000, input_seq_width=35, output_seq_width=32, rnn_size=256,
                    batch_size=100, grad_clip=1.0, num_mixture=5, learning_rate=0.001, decay_rate=1.0,
                    min_learning_rate=0.00001, use_layer_norm=0, use_recurrent_dropout=0,
                    recurrent_dropout_prob=0.90, use_input_dropout=0, input_dropout_prob=0.90, use_output_dropout=0,
                    output_dropout_prob=0.90, is_training=1)
    assert R.HyperParams(**original) == R.HyperParams(*original.values()) == R.default_hps()
    assert R.HyperParams._fields[:19] == tuple(original)
    assert R.HyperParams(**original).reward_done == 0


def test_mdnrnn_params_round_trip_in_the_originals_json_scale():
    from rnn import rnn as R
    torch.manual_seed(0)
    rnn = R.MDNRNN(R.hps_sample, gpu_mode=False, reuse=True)
    params, shapes, names = rnn.get_model_params()
    assert shapes == [(256, 480), (480,), (291, 1024), (1024,)] and len(names) == 4
    assert params[0][0][0] == int(np.round(rnn.output_w[0, 0].item() * 10000))
    other = R.MDNRNN(R.hps_sample)
    other.set_model_params(params)
    np.testing.assert_allclose(other.kernel.detach().numpy(), np.array(params[2]) / 10000.0, rtol=1e-6)
    np.random.seed(1)
    random_params = other.get_random_model_params(stdev=0.5)
    assert [np.shape(p) for p in random_params] == shapes
    other.set_random_params(stdev=0.5)
    assert not np.allclose(other.kernel.detach().numpy(), np.array(params[2]) / 10000.0)
    with pytest.raises(ValueError, match="inconsistent shape"):
        other.set_model_params(params[::-1])
    rnn.init_session()
    rnn.close_sess()


def test_sample_sequence_keeps_the_originals_signature():
    from rnn import rnn as R
    rnn = R.MDNRNN(R.hps_sample)
    actions = np.zeros((4, 3))
    np.random.seed(3)
    strokes = R.sample_sequence(None, rnn, R.hps_sample, np.zeros(32), actions, temperature=0.5, seq_len=4)
    np.random.seed(3)
    again = R.sample_sequence(None, rnn, R.hps_sample, np.zeros(32), actions, 0.5, 4)
    assert strokes.shape == (4, 32) and strokes.dtype == np.float32
    np.testing.assert_array_equal(strokes, again)


# --- vae/vae.py ---------------------------------------------------------------------------------

def test_vae_keeps_reset_graph_and_its_constructor():
    from vae.vae import ConvVAE, reset_graph
    reset_graph()  # every original training script calls it first
    vae = ConvVAE(z_size=32, batch_size=1, learning_rate=0.0001, kl_tolerance=0.5, is_training=False, reuse=True,
                  gpu_mode=False)
    z = vae.encode(np.zeros((1, 64, 64, 3)))
    assert z.shape == (1, 32) and vae.decode(z).shape == (1, 64, 64, 3)
    vae.close_sess()


# --- model.py -----------------------------------------------------------------------------------

class _Env:
    """A stand-in env with the original's API that records the actions it is given."""

    def __init__(self, steps=6):
        self.actions, self.steps, self.t = [], steps, 0

    def seed(self, seed):
        pass

    def reset(self):
        self.t = 0
        return np.zeros((64, 64, 3), np.uint8)

    def step(self, action):
        self.actions.append(np.array(action))
        self.t += 1
        return np.full((64, 64, 3), 10 * self.t, np.uint8), 1.0, self.t == self.steps, {}


def _agent(cls=None):
    import model
    return (cls or model.Model)(load_model=False)


def test_the_module_helpers_are_the_originals():
    import model
    assert model.EXP_MODE == model.MODE_ZH == 4 and model.render_mode is True
    np.testing.assert_allclose(model.sigmoid(np.array([0.0, 2.0])), [0.5, 1 / (1 + np.exp(-2.0))])
    np.testing.assert_array_equal(model.relu(np.array([-1.0, 2.0])), [0.0, 2.0])
    np.testing.assert_array_equal(model.clip(np.array([-1.0, 0.5, 2.0])), [0.0, 0.5, 1.0])
    assert model.passthru(7) == 7
    np.testing.assert_allclose(model.softmax(np.array([0.0, np.log(3.0)])), [0.25, 0.75])
    np.random.seed(0)
    assert model.sample(np.array([0.0, 1.0, 0.0])) == 1


def test_setting_weight_and_bias_changes_the_action():
    agent = _agent()
    assert agent.weight.shape == (288, 3) and agent.bias.shape == (3,) and agent.param_count == 867
    assert agent.z_size == 32 and agent.input_size == 288
    agent.weight = np.zeros((288, 3))
    agent.bias = np.zeros(3)
    np.testing.assert_array_equal(agent.get_action(np.ones(32)), [0.0, 0.5, 0.0])
    agent.bias = np.array([0.5, 0.0, 2.0])
    np.testing.assert_allclose(agent.get_action(np.ones(32)), [np.tanh(0.5), 0.5, np.tanh(2.0)])
    np.testing.assert_array_equal(agent.model_params[:3], [0.5, 0.0, 2.0])  # what train.py and the lockstep path read


def test_set_model_params_fills_the_originals_attributes_and_load_model_keeps_data():
    agent = _agent()
    params = np.arange(867.0)
    agent.set_model_params(params)
    np.testing.assert_array_equal(agent.bias, params[:3])
    np.testing.assert_array_equal(agent.weight, params[3:].reshape(288, 3))
    agent.load_model(REPO / "log" / "carracing.cma.4.16.best.json")
    assert len(agent.data[0]) == 867
    np.testing.assert_array_equal(agent.bias, np.array(agent.data[0][:3]))


def test_z_hidden_keeps_its_four_attributes():
    import model
    from config import ModelConfig
    agent = model.Model(load_model=False, cfg=ModelConfig(exp_mode="z_hidden"))
    assert agent.weight_hidden.shape == (32, 40) and agent.bias_hidden.shape == (40,)
    assert agent.weight_output.shape == (40, 3) and agent.bias_output.shape == (3,)
    assert agent.param_count == (32 + 1) * 40 + 40 * 3 + 3
    agent.weight_output = np.zeros((40, 3))
    agent.bias_output = np.zeros(3)
    np.testing.assert_array_equal(agent.get_action(np.ones(32)), [0.0, 0.5, 0.0])


def test_simulate_calls_a_subclasss_get_action_at_every_step():
    import model
    calls = []

    class Steady(model.Model):
        def get_action(self, z):
            calls.append(np.array(z))
            return np.array([0.25, 1.0, 0.0])

    agent = _agent(Steady)
    agent.env = _Env(steps=6)
    rewards, ts = model.simulate(agent, train_mode=False, render_mode=False, num_episode=1)
    assert (rewards, ts) == ([6.0], [5])
    assert len(calls) == 6 + 1  # each step, then once after the episode (the original's recording step)
    assert all((a == [0.25, 1.0, 0.0]).all() for a in agent.env.actions)


def test_simulate_and_the_lockstep_path_act_on_the_attributes():
    import model
    from agent.rollout import simulate_batch
    agent = _agent()
    agent.weight, agent.bias = np.zeros((288, 3)), np.zeros(3)
    agent.env = _Env(steps=4)
    model.simulate(agent, render_mode=False, num_episode=1)
    assert len(agent.env.actions) == 4 and all((a == [0.0, 0.5, 0.0]).all() for a in agent.env.actions)
    env = _Env(steps=3)
    env.np_random = None
    simulate_batch(agent, [env], [agent.model_params], [0])
    assert len(env.actions) == 3 and all((a == [0.0, 0.5, 0.0]).all() for a in env.actions)


# --- env.py -------------------------------------------------------------------------------------

def test_env_render_takes_the_originals_modes_without_changing_the_episode():
    from env import make_env
    steps = []
    for render in (False, True):
        env = make_env("carracing", seed=5, render_mode=False, full_episode=False)
        obs = env.reset()
        run = []
        for _ in range(4):
            if render:
                frame = env.render("rgb_array")
                assert frame.shape == (400, 600, 3) and frame.dtype == np.uint8
            obs, reward, done, _ = env.step(np.array([0.1, 0.5, 0.0]))
            run.append((obs.copy(), reward))
        steps.append(run)
        env.close()
    for (a, ra), (b, rb) in zip(*steps):
        np.testing.assert_array_equal(a, b)
        assert ra == rb


# --- dream_env.py, dream_model.py -----------------------------------------------------------------

def test_dream_model_runs_the_originals_loop(monkeypatch):
    import dream_env
    import dream_model
    monkeypatch.chdir(REPO)  # the original's default initial_z/initial_z.json
    assert len(dream_env.initial_mu_logvar) == len(dream_env.initial_mu) and len(dream_env.initial_mu[0]) == 32
    agent = dream_model.make_model(load_model=False)
    assert isinstance(agent, dream_model.Model)
    agent.make_env(seed=3)
    assert isinstance(agent.env, dream_env.CarRacingDream)
    rewards, ts = dream_model.simulate(agent, train_mode=True, render_mode=False, num_episode=2, seed=1, max_len=3)
    assert (rewards, ts) == ([], [2, 2])  # the original's dream loop returns no rewards
    env = dream_env.CarRacingDream(agent)
    env.seed(0)
    z = env.reset()
    assert z.shape == (32,) and env.render("rgb_array").shape == (512, 512, 3)
    assert dream_env.make_env("carracing", agent, 7, False).z_size == 32


# --- train.py -----------------------------------------------------------------------------------

def test_the_packet_functions_take_the_originals_arguments():
    from train import decode_result_packet, decode_solution_packet, encode_result_packet, encode_solution_packets
    solutions = [np.array([0.12345, -1.0]), np.array([2.0, 0.5])]
    packets = encode_solution_packets([11, 22], solutions, 1, -1)  # the original's num_worker_trial 1
    assert len(packets) == 2
    ((worker, job, seed, train_mode, max_len, params),) = decode_solution_packet(packets[1])
    assert (worker, job, seed, train_mode, max_len) == (2, 1, 22, 1, -1)
    np.testing.assert_allclose(params, [2.0, 0.5])
    assert decode_result_packet(encode_result_packet([(1, 0, 3.5, 7.0)])) == [(1, 0, 3.5, 7.0)]
