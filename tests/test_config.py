"""config.py: presets, overrides, validation and --help."""
import dataclasses
import subprocess
import sys

import pytest

import config
from plumbing.cli import UserError

ALL = [config.EnvConfig, config.ExtractConfig, config.VAEConfig, config.SeriesConfig, config.RNNConfig,
       config.RNNTrainConfig, config.ModelConfig, config.EvalConfig, config.TrainConfig, config.DreamConfig]


def test_paper_preset_is_the_original():
    """Spot values straight from the original scripts (tf_original.md sections 3, 4, 6, 9)."""
    x = config.preset(config.ExtractConfig)
    assert (x.max_trials, x.max_frames, x.dir_name) == (200, 1000, "record")
    v = config.preset(config.VAEConfig)
    assert (v.z_size, v.batch_size, v.learning_rate, v.kl_tolerance, v.num_epoch) == (32, 100, 1e-4, 0.5, 10)
    r = config.preset(config.RNNConfig)
    assert (r.num_steps, r.max_seq_len, r.rnn_size, r.num_mixture, r.grad_clip, r.learning_rate) == \
        (4000, 999, 256, 5, 1.0, 1e-3)
    assert (r.use_layer_norm, r.use_recurrent_dropout, r.use_input_dropout, r.use_output_dropout) == (0, 0, 0, 0)
    t = config.preset(config.TrainConfig)
    assert (t.optimizer, t.num_episode, t.eval_steps, t.num_worker, t.num_worker_trial, t.antithetic,
            t.cap_time, t.retrain, t.seed_start, t.sigma_init, t.sigma_decay) == \
        ("cma", 16, 25, 64, 1, 1, 0, 0, 0, 0.1, 0.999)


def test_smoke_changes_amounts_only_never_the_networks():
    network_fields = {"z_size", "rnn_size", "num_mixture", "input_seq_width", "output_seq_width",
                      "kl_tolerance", "exp_mode", "use_layer_norm"}
    for cls, overrides in config.PRESETS["smoke"].items():
        assert not network_fields & set(overrides), cls.__name__
        paper, smoke = config.preset(cls, "paper"), config.preset(cls, "smoke")
        assert {f: getattr(smoke, f) for f in overrides} == overrides
        assert all(getattr(paper, f) == getattr(smoke, f) for f in
                   {f.name for f in dataclasses.fields(cls)} - set(overrides))


def test_every_field_documented_and_names_unique_within_a_script():
    for cls in ALL:
        for f in dataclasses.fields(cls):
            assert f.metadata["help"] and "\n" not in f.metadata["help"], f"{cls.__name__}.{f.name}"
    # the combinations the stage scripts parse must not clash
    for combo in [(config.EnvConfig, config.ExtractConfig), (config.RNNConfig, config.RNNTrainConfig),
                  (config.EnvConfig, config.ModelConfig, config.EvalConfig),
                  (config.EnvConfig, config.ModelConfig, config.TrainConfig),
                  (config.TrainConfig, config.ModelConfig, config.EnvConfig, config.DreamConfig),
                  (config.ModelConfig, config.DreamConfig)]:
        config.parser(*combo)


def test_overrides_apply_on_top_of_the_preset():
    env, train = config.parse(config.EnvConfig, config.TrainConfig,
                              argv=["--config", "smoke", "-n", "3", "--sigma_init", "0.25", "-o", "pepg"])
    assert (train.num_worker, train.sigma_init, train.optimizer) == (3, 0.25, "pepg")
    assert train.num_episode == config.PRESETS["smoke"][config.TrainConfig]["num_episode"]
    assert config.parse(config.SeriesConfig, argv=["--skip_bad", "1"]).skip_bad is True
    assert config.parse(config.SeriesConfig, argv=["--skip_bad", "false"]).skip_bad is False


@pytest.mark.parametrize("argv, message", [
    (["--config", "huge"], "unknown preset"),
    (["--max_trials", "0"], "--max_trials 0: must be at least 1"),
    (["--max_trials", "ten"], "invalid int value"),
    (["--bogus", "1"], "unrecognized arguments"),
])
def test_bad_flags_raise_one_line_user_errors(argv, message):
    with pytest.raises(UserError, match=message) as e:
        config.parse(config.ExtractConfig, argv=argv)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("value, message", [("1.5", "must be at most 1.0"), ("0", "must be at least 0.01")])
def test_keep_probabilities_are_bounded(value, message):
    for option in ("recurrent_dropout_prob", "input_dropout_prob", "output_dropout_prob"):
        with pytest.raises(UserError, match=f"--{option} {float(value)}: {message}"):
            config.parse(config.RNNConfig, argv=[f"--{option}", value])
    assert config.parse(config.RNNConfig, argv=["--recurrent_dropout_prob", "1"]).recurrent_dropout_prob == 1.0


def test_choices_are_enforced():
    with pytest.raises(UserError, match="must be one of"):
        config.parse(config.TrainConfig, argv=["-o", "adam"])


def test_help_lists_each_field_with_paper_and_smoke_values():
    text = " ".join(config.parser(config.ExtractConfig).format_help().split())
    for f in dataclasses.fields(config.ExtractConfig):
        assert f"--{f.name}" in text and " ".join(f.metadata["help"].split()) in text
    smoke = config.PRESETS["smoke"][config.ExtractConfig]["max_trials"]
    assert f"(paper: 200, smoke: {smoke}, small: 50, medium: 50)" in text


def test_cli_run_prints_one_line_and_exits_2(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("from plumbing import cli\n"
                      "def main():\n    raise cli.UserError('data/x.npz: not a zip file')\n"
                      "cli.run(main)\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(config.__file__).rsplit("/", 1)[0]})
    assert proc.returncode == 2
    assert proc.stderr == "s.py: error: data/x.npz: not a zip file\n"


def test_cli_run_stops_quietly_when_its_reader_leaves(tmp_path):
    """`script | head -1`: the pipe closes under a long output; no traceback, exit status 1."""
    script = tmp_path / "s.py"
    script.write_text("from plumbing import cli\n"
                      "def main():\n    for i in range(10**6):\n        print(i)\n"
                      "cli.run(main)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={"PYTHONPATH": str(config.__file__).rsplit("/", 1)[0]})
    assert proc.stdout.readline() == b"0\n"
    proc.stdout.close()
    assert proc.wait(timeout=60) == 1 and proc.stderr.read() == b""


def test_torch_adam_with_tf_adam_epsilon_takes_tfs_steps():
    """TF's AdamOptimizer in numpy (lr_t = lr sqrt(1 - b2^t) / (1 - b1^t), theta -= lr_t m / (sqrt(v)
    + eps)) against torch's Adam with config.tf_adam_epsilon(step), on gradients of all scales."""
    import numpy as np
    import torch

    from config import ADAM_BETAS, ADAM_EPSILON, tf_adam_epsilon

    rng = np.random.default_rng(0)
    grads = rng.normal(size=(30, 6)) * np.array([1e-9, 1e-7, 1e-5, 1e-3, 1.0, 10.0])
    lr, (b1, b2) = 0.01, ADAM_BETAS
    theta, m, v = np.zeros(6), np.zeros(6), np.zeros(6)
    param = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    adam = torch.optim.Adam([param], lr=lr, betas=ADAM_BETAS, eps=ADAM_EPSILON)
    for step, g in enumerate(grads):
        t = step + 1
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        theta -= lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + ADAM_EPSILON)
        param.grad = torch.from_numpy(g.copy())
        adam.param_groups[0]["eps"] = tf_adam_epsilon(step)
        adam.step()
    np.testing.assert_allclose(param.detach().numpy(), theta, rtol=1e-10, atol=1e-15)
    torch_default = torch.zeros(6, dtype=torch.float64, requires_grad=True)  # the epsilon matters at these scales
    plain = torch.optim.Adam([torch_default], lr=lr, betas=ADAM_BETAS, eps=ADAM_EPSILON)
    for g in grads:
        torch_default.grad = torch.from_numpy(g.copy())
        plain.step()
    assert not np.allclose(torch_default.detach().numpy(), theta, rtol=1e-6, atol=0)
