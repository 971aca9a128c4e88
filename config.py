"""Every hyperparameter of the pipeline, in one place.

One dataclass per stage. Its defaults are the `paper` preset: the values of the TensorFlow
original (hardmaru/WorldModelsExperiments, `carracing/`). The `smoke` preset changes only
amounts (episodes, frames, epochs, steps, population, generations), never the networks, so
weights move freely between scales; the `small` preset is the budget of the shipped agent
(amounts between the two, plus named options). Options that deviate from the original are
named here, off by default, and listed in the README.

Every stage script builds its configuration with `parse`:

    python extract.py --config smoke --max_trials 3

Its `--help` lists each field with a one-line meaning and its value in every preset that sets it.
"""
import argparse
import dataclasses
import math
import os
import sys
from dataclasses import dataclass, field

from plumbing.cli import UserError


def arg(default, help, *flags, choices=None, min=None, max=None, before=dataclasses.MISSING):
    """A config field: `help` is its one-line meaning; `flags` are extra short options (`-n`);
    `min` and `max` bound its value.
    An option added after runs were recorded names `before`: what those runs did, which a
    checkpoint or pipeline.json that lacks the option stands for."""
    return field(default=default, metadata=dict(help=help, flags=flags, choices=choices, min=min, max=max,
                                                  before=before))


def before_options(*classes):
    """{option: value} of the options of `classes` added after runs were recorded (`arg(before=)`):
    what a record that lacks one of them ran with."""
    return {f.name: f.metadata["before"] for cls in classes for f in dataclasses.fields(cls)
            if f.metadata["before"] is not dataclasses.MISSING}


@dataclass
class EnvConfig:
    """The CarRacing environment (env.py)."""

    env_name: str = arg("carracing", "environment name: carracing = the real track (the original); carracing_dream "
                                     "= train.py trains the controller inside M's dream (dream_env.CarRacingDreamBatch, "
                                     "M with --reward_done 1 heads, DreamConfig's --train_temperature), as the "
                                     "original's Doom train.py (doomrnn); its evaluations of the mean stay on the real "
                                     "track, and the logs are named carracing_dream.*",
                        choices=("carracing", "carracing_dream"))
    lap_complete_percent: float = arg(1.0, "an episode also ends when the car crosses the start line having visited more "
                                           "than this fraction of tiles; 1.0 = only when every tile is visited, as gym "
                                           "0.9.4 (Gymnasium's default is 0.95)", min=0.0)
    renderer: str = arg("fast", "who draws the 96x96 observation: fast = pixel-identical to Gymnasium's own (verified "
                                "for Gymnasium 1.4.0 + pygame-ce 2.5.8) and several times cheaper; gymnasium = "
                                "Gymnasium's code; approx = a smaller canvas (--approx_scale), cheaper still, not "
                                "identical (README, Speed: the measured costs and errors)",
                        choices=("fast", "gymnasium", "approx"))
    approx_scale: float = arg(0.25, "canvas scale of --renderer approx (1.0 = Gymnasium's 1000x800 canvas; 0.25 = "
                                    "250x200): smaller is faster and less exact", min=0.05)
    compiled: bool = arg(True, "fast and approx draw their polygons, and every renderer's frames are resized, by "
                               "numba-compiled kernels (kernels/): the same bytes, less CPU; 0 = pygame's and Pillow's "
                               "code only (also the fallback, with one line, when numba cannot load)")


@dataclass
class ExtractConfig:
    """extract.py: rollouts with the original's random-controller policy (or a trained agent's, --controller)."""

    max_trials: int = arg(200, "episodes per process (each MPI rank writes this many)", min=1)
    max_frames: int = arg(1000, "frames per episode (episodes always run full length)", min=1)
    dir_name: str = arg("record", "folder the episodes are written to, one <int>.npz each")
    seed: int = arg(0, "base seed: episode i's file name and content depend only on (seed, i)", min=0)
    controller: str = arg("", "also record episodes driven by this controller JSON with the agent's V and M "
                              "(--vae_path, --rnn_path, --exp_mode) instead of the random policy only (empty = the "
                              "original's random policy)", before="")
    agent_share: float = arg(1.0, "with --controller: the share of episodes the agent drives, spread evenly (episode i "
                                  "is the agent's when floor((i + 1) * share) > floor(i * share)); the others are the "
                                  "random policy's", min=0.0, before=1.0)
    action_noise: float = arg(0.0, "with --controller: standard deviation of N(0, sigma) noise added to each of the "
                                   "agent's actions, clipped to the action space (0 = none; Sha01in's JAX port: 0.05)",
                              min=0.0, before=0.0)
    record_rewards: bool = arg(False, "also store each step's reward (float32 (T,)) and done (bool (T,): the real "
                                      "env would have ended the episode there, Gymnasium's terminated) as arrays "
                                      "`reward` and `done` in the episode's .npz, for M's reward and done heads "
                                      "(rnn_train.py --reward_done 1); off = the original's files (obs, action)",
                               before=False)


@dataclass
class VAEConfig:
    """vae/vae.py and vae_train.py: the ConvVAE (V)."""

    z_size: int = arg(32, "latent size of the VAE", min=1)
    batch_size: int = arg(100, "frames per training batch", min=1)
    learning_rate: float = arg(0.0001, "Adam learning rate", min=0.0)
    kl_tolerance: float = arg(0.5, "free bits: per-sample KL is floored at kl_tolerance * z_size", min=0.0)
    num_epoch: int = arg(10, "passes over the training frames", min=1)
    max_steps: int = arg(0, "stop after this many steps in all, inside an epoch if need be (0 = num_epoch passes, "
                            "as the original); fixes V's steps when the data grows (README, the study's row b)", min=0,
                         before=0)
    data_dir: str = arg("record", "folder of episode .npz files to train on")
    max_files: int = arg(10000, "train on the first this-many files of data_dir, sorted by name", min=1)
    model_save_path: str = arg("tf_vae", "folder vae.json (TF format) is written to")
    device: str = arg("auto", "torch device: auto (cuda when present, else cpu), cpu, cuda, cuda:1, ...")
    init_from: str = arg("", "start from these weights (a vae.json in the original's format, e.g. the last round's "
                             "V) instead of a fresh initialisation (empty = fresh, as the original); Adam starts "
                             "fresh either way", before="")
    seed: int = arg(0, "seed for initialisation, shuffling and the reparameterisation noise", min=0)
    hflip: bool = arg(False, "mirror a random half of the training frames left-right, drawn afresh each epoch "
                             "(ctallec's RandomHorizontalFlip: a left corner teaches a right one; the gauges at "
                             "the bottom are mirrored too); off = the original", before=False)
    shuffle_files: int = arg(100, "episodes loaded and shuffled together (~1.2 GB per 100 episodes of 1000 frames); "
                                  "a value >= max_files shuffles all frames at once, as the original (~123 GB)", min=1)
    log_every: int = arg(500, "log the losses (TensorBoard, progress bar) every this-many steps", min=1)
    save_every: int = arg(5000, "write vae.json every this-many steps, as the original", min=1)
    checkpoint_every: int = arg(1000, "write the resumable checkpoint <model_save_path>/vae_ckpt.pt every this-many steps",
                                min=1)
    resume: bool = arg(False, "continue from <model_save_path>/vae_ckpt.pt (same data and settings)")
    log_dir: str = arg("runs/vae", "TensorBoard folder (scalars losses/loss, losses/r_loss, losses/kl_loss, "
                                   "charts/images_per_second) and the per-epoch reconstruction PNGs")

    def weights_file(self):
        return os.path.join(self.model_save_path, "vae.json")

    def checkpoint_file(self):
        return os.path.join(self.model_save_path, "vae_ckpt.pt")


@dataclass
class SeriesConfig:
    """series.py: encode every recorded frame into (mu, logvar)."""

    data_dir: str = arg("record", "folder of episode .npz files to encode")
    max_files: int = arg(10000, "encode the first this-many files of data_dir, sorted by name", min=1)
    vae_path: str = arg("tf_vae/vae.json", "VAE weights (TF JSON format)")
    series_dir: str = arg("series", "folder series.npz is written to")
    encode_batch_size: int = arg(1000, "frames per encoder batch", min=1)
    skip_bad: bool = arg(False, "leave out (with a warning) a corrupt episode or one of the wrong length instead of failing")
    device: str = arg("auto", "torch device: auto (cuda when present, else cpu), cpu, cuda, ...")

    def series_file(self):
        return os.path.join(self.series_dir, "series.npz")


@dataclass
class RNNConfig:
    """rnn/rnn.py: the MDN-RNN (M). Field names and values are the original's HyperParams
    (rnn_train.py's default_hps, which sets num_steps=4000 and max_seq_len=999)."""

    num_steps: int = arg(4000, "training steps (batches); 0 writes the untrained M (its initialisation at --seed: "
                               "ctallec's ablation)", min=0)
    max_seq_len: int = arg(999, "unroll length: episode frames minus 1 (teacher forcing)", min=1)
    input_seq_width: int = arg(35, "LSTM input width: z (32) then action (3)", min=1)
    output_seq_width: int = arg(32, "predicted z width", min=1)
    rnn_size: int = arg(256, "LSTM units", min=1)
    batch_size: int = arg(100, "sequences per batch", min=1)
    grad_clip: float = arg(1.0, "element-wise gradient clip value (not norm clipping)", min=0.0)
    num_mixture: int = arg(5, "Gaussians per z dimension in the MDN head", min=1)
    learning_rate: float = arg(0.001, "Adam learning rate", min=0.0)
    decay_rate: float = arg(1.0, "lr = (learning_rate - min_learning_rate) * decay_rate**step + min_learning_rate", min=0.0)
    min_learning_rate: float = arg(0.00001, "floor of the decayed learning rate", min=0.0)
    use_layer_norm: int = arg(0, "1 = layer norm inside the LSTM cell (TF LayerNormBasicLSTMCell)", choices=(0, 1))
    use_recurrent_dropout: int = arg(0, "1 = dropout on the cell's candidate (j) values", choices=(0, 1))
    recurrent_dropout_prob: float = arg(0.90, "keep probability of the recurrent dropout", min=0.01, max=1.0)
    use_input_dropout: int = arg(0, "1 = dropout on the LSTM input", choices=(0, 1))
    input_dropout_prob: float = arg(0.90, "keep probability of the input dropout", min=0.01, max=1.0)
    use_output_dropout: int = arg(0, "1 = dropout on the LSTM output", choices=(0, 1))
    output_dropout_prob: float = arg(0.90, "keep probability of the output dropout", min=0.01, max=1.0)
    is_training: int = arg(1, "the original's HyperParams flag: 1 = the training graph (its loss and Adam), which "
                               "rnn_train.py always builds (0 is refused there); the agent's M is the sampling "
                               "graph (hps_sample: 0); dropout follows its own use_* flags, as in the original",
                           choices=(0, 1))
    reward_done: int = arg(0, "1 = M also predicts each step's reward and done (a head of 2 outputs on the LSTM "
                              "output: done logit, as the original's Doom M's restart, and reward), trained on "
                              "series.npz's reward and done (extract.py --record_rewards) with cost = z cost + "
                              "done cost + reward cost (README, Training inside the dream); its 2 extra arrays "
                              "come last in rnn.json, which the original's loader skips; 0 = the original's "
                              "CarRacing M", choices=(0, 1), before=0)
    restart_factor: float = arg(10.0, "with --reward_done 1: weight of the done = 1 steps in the done cost (the "
                                      "original's Doom M: 10)", min=0.0, before=10.0)
    reward_asymmetry: float = arg(1.0, "with --reward_done 1: weight of the steps whose predicted reward is above "
                                       "the recorded one in the reward cost (1 = plain squared error; Sha01in's "
                                       "port: 5, so that M's dream pays less where it is unsure, not more)",
                                  min=1.0, before=1.0)


@dataclass
class RNNTrainConfig:
    """rnn_train.py: where the MDN-RNN reads its data and writes its weights."""

    series_path: str = arg("series/series.npz", "encoded episodes written by series.py")
    model_save_path: str = arg("tf_rnn", "folder rnn.json (TF format) is written to")
    initial_z_save_path: str = arg("tf_initial_z", "folder initial_z.json is written to")
    device: str = arg("auto", "torch device: auto (cuda when present, else cpu), cpu, cuda, ...")
    threads: int = arg(0, "torch CPU threads (0 = torch's default, one per core); 1 is faster when other "
                          "processes share the cores", min=0)
    init_from: str = arg("", "start from these weights (an rnn.json in the original's format, e.g. the last round's "
                             "M) instead of a fresh initialisation (empty = fresh, as the original); Adam and the "
                             "learning-rate schedule start fresh either way; with --reward_done 1 an M without "
                             "the heads (the original's) loads and the heads start fresh", before="")
    seed: int = arg(0, "seed for initialisation, batch sampling and the z noise", min=0)
    log_every: int = arg(20, "print the cost and log the sequences per second every this-many steps", min=1)
    checkpoint_every: int = arg(100, "write the resumable checkpoint <model_save_path>/rnn_ckpt.pt every this-many steps",
                                min=1)
    resume: bool = arg(False, "continue from <model_save_path>/rnn_ckpt.pt (same hyperparameters; num_steps may grow)")
    log_dir: str = arg("runs/rnn", "TensorBoard folder (scalars losses/cost, charts/learning_rate, "
                                   "charts/sequences_per_second)")

    def weights_file(self):
        return os.path.join(self.model_save_path, "rnn.json")

    def checkpoint_file(self):
        return os.path.join(self.model_save_path, "rnn_ckpt.pt")

    def initial_z_file(self):
        return os.path.join(self.initial_z_save_path, "initial_z.json")


@dataclass
class ModelConfig:
    """model.py: the agent (V + M + linear controller) and its rollout loop `simulate`."""

    vae_path: str = arg("vae/vae.json", "VAE weights the agent loads (TF JSON format)")
    rnn_path: str = arg("rnn/rnn.json", "MDN-RNN weights the agent loads (TF JSON format)")
    exp_mode: str = arg("zh", "controller input: zh = [z, h] (the original), z, zc, zch, z_hidden (z -> 40 tanh -> 3)",
                        choices=("zh", "z", "zc", "zch", "z_hidden"))
    controller_hidden: int = arg(40, "tanh units of exp_mode z_hidden's hidden layer (the paper's z + hidden agent)",
                                 min=1)
    max_episode_length: int = arg(1000, "step cap of one episode in simulate", min=1)
    envs_per_worker: int = arg(1, "envs a process steps in lockstep (extract.py, train.py workers, model.py norender); "
                                  "1 = the original's one env. K > 1 batches V, M and C over K envs (faster: README, "
                                  "Speed); extract.py's random-policy files are the same for every K; otherwise "
                                  "each episode draws its z noise from its own stream (seed, episode), not the "
                                  "global np.random, so results differ from K = 1 but not between K > 1", min=1)

    def check_weight_files(self):
        """A one-line UserError saying what to pass when the agent's V or M weights are missing."""
        for path, flag in ((self.vae_path, "--vae_path"), (self.rnn_path, "--rnn_path")):
            if not os.path.isfile(path):
                raise UserError(f"{path}: no such file (pass {flag}, or run from the run folder that holds vae/ "
                                "and rnn/, e.g. cd runs/smoke)")


@dataclass
class EvalConfig:
    """model.py's command line: evaluation of a controller."""

    num_episode: int = arg(100, "episodes of `model.py norender`", min=1)
    gif_path: str = arg("render.gif", "`model.py render` writes the episode here as a GIF (every 2nd frame, half size)")


@dataclass
class TrainConfig:
    """train.py: the controller (C) trained by an evolution strategy over MPI workers."""

    optimizer: str = arg("cma", "ses, pepg, openes, ga or cma", "-o", choices=("ses", "pepg", "openes", "ga", "cma"))
    num_episode: int = arg(16, "episodes per solution; fitness = their mean reward", min=1)
    eval_steps: int = arg(25, "evaluate the mean (1024 episodes at paper scale) every this-many generations", min=1)
    num_worker: int = arg(64, "worker processes (MPI ranks besides the master)", "-n", min=1)
    num_worker_trial: int = arg(1, "solutions per worker per generation; population = num_worker * num_worker_trial",
                                "-t", min=1)
    antithetic: int = arg(1, "1 = solutions i and i+pop/2 share their episode seeds", choices=(0, 1))
    common_tracks: int = arg(0, "1 = every candidate of a generation runs the same tracks (one seed per generation, "
                                "drawn afresh each generation), so that candidates are ranked on equal tracks; 0 = "
                                "the original's seed per candidate (or antithetic pair)", choices=(0, 1), before=0)
    cap_time: int = arg(0, "1 = cap episodes at twice the last generation's mean length", choices=(0, 1))
    retrain: int = arg(0, "1 = reset the mean to the best evaluated solution when an evaluation does not improve "
                          "(no effect with cma)", choices=(0, 1))
    seed_start: int = arg(0, "seed of the master's seed generator", "-s", min=0)
    sigma_init: float = arg(0.1, "initial standard deviation", min=0.0)
    sigma_decay: float = arg(0.999, "sigma decay (not used by cma)", min=0.0)
    sigma_adaptation: str = arg("csa", "cma's step-size rule: csa = cumulative step-size adaptation, pycma 2.2's "
                                       "rule that the original ran; tpa = two-point adaptation, which pycma 3+ picks "
                                       "by itself from 300 parameters on and which this repository's runs before the "
                                       "option existed used (README, the study)", choices=("csa", "tpa"),
                                before="tpa")
    max_generations: int = arg(0, "stop after this many generations (0 = run until killed, as the original)", min=0)
    init_from: str = arg("", "start the search's mean from this controller JSON (a .best.json or a generation's "
                             ".json) instead of zeros (empty = zeros, as the original); its step size stays "
                             "--sigma_init; not with ga, whose population has no mean", before="")
    train_renderer: str = arg("", "renderer of the training episodes only (empty = --renderer, as the original); "
                                  "the evaluations of the mean keep --renderer, so approx trains faster while every "
                                  "reported score stays exact", choices=("", "fast", "gymnasium", "approx"),
                               before="")
    no_reward_steps: int = arg(0, "end a training episode after this many consecutive steps without a positive "
                                  "reward (0 = never, as the original); evaluations always run full episodes", min=0,
                               before=0)
    log_dir: str = arg("log", "folder of the logs <game>.<optimizer>.<num_episode>.<population>.*")
    resume: bool = arg(False, "continue the run of these settings from <log base>.checkpoint.pt (written after every "
                              "generation and evaluation); the logs come out as if the run had never stopped")


ADAM_BETAS, ADAM_EPSILON = (0.9, 0.999), 1e-8  # TF's AdamOptimizer defaults, used by both trainers


def tf_adam_epsilon(step):
    """torch's Adam epsilon at 0-based step `step` that makes its update TF's: TF adds epsilon to
    the uncorrected sqrt(v), torch to the bias-corrected one (both trainers set it every step)."""
    return float(ADAM_EPSILON / math.sqrt(1.0 - ADAM_BETAS[1] ** (step + 1)))

# The original train.py's extra constructor arguments per --optimizer (es.py holds the classes:
# cma -> CMAES, ses and pepg -> PEPG, ga -> SimpleGA, openes -> OpenES). train.py adds
# sigma_init, popsize and (all but cma) sigma_decay from TrainConfig, and antithetic for openes.
# cma's weight decay is the default of the original es.py's CMAES, which its train.py left as is.
ES_ARGS = {
    "cma": dict(weight_decay=0.01),
    "ses": dict(sigma_alpha=0.2, sigma_limit=0.02, elite_ratio=0.1, weight_decay=0.005),
    "ga": dict(sigma_limit=0.02, elite_ratio=0.1, weight_decay=0.005),
    "pepg": dict(sigma_alpha=0.20, sigma_limit=0.02, learning_rate=0.01, learning_rate_decay=1.0,
                 learning_rate_limit=0.01, weight_decay=0.005),
    "openes": dict(sigma_limit=0.02, learning_rate=0.01, learning_rate_decay=1.0, learning_rate_limit=0.01,
                   weight_decay=0.005),
}


@dataclass
class DreamConfig:
    """dream_model.py / dream_env.py: the controller driving inside M's dream."""

    initial_z_path: str = arg("initial_z/initial_z.json", "initial latents to start dreams from: [mu list, logvar list] "
                                                        "of value * 10000 integers (rnn_train.py writes one)")
    temperature: float = arg(0.7, "sampling temperature of the MDN (logmix / tau, noise * sqrt(tau))", min=0.01)
    max_frames: int = arg(1200, "the dream reports done on the step that takes its frame count past this (the "
                                "original's > 1200); dream_model.py also stops at --max_episode_length, as the "
                                "original's loop", min=1)
    train_temperature: float = arg(1.25, "train.py --env_name carracing_dream: the temperature of the training "
                                          "dreams (the original's Doom TEMPERATURE, 1.25 in its code, 1.15 in the "
                                          "paper)", min=0.01)
    train_dropout_prob: float = arg(1.0, "train.py --env_name carracing_dream: keep probability of a dropout on M's "
                                         "cell candidates at every training-dream step (the original's recurrent "
                                         "dropout, as DropoutsDreamLand dreams; masks from each dream's own "
                                         "generator); 1.0 = none, the original's Doom dream", min=0.01, max=1.0,
                                         before=1.0)
    train_done_warmup: int = arg(0, "train.py --env_name carracing_dream: M's done is ignored in a training dream's "
                                    "first N steps (from its zero state M's done head fires falsely early in "
                                    "21-37% of dreams, docs/dream.md; the real car cannot leave the playfield "
                                    "that soon); 0 = the original's Doom rule", min=0, before=0)


@dataclass
class ProbeConfig:
    """vprobe.py (and report.py): V's error on the agent's frames against the data policy's."""

    probe_episodes: int = arg(3, "episodes of each policy (the agent's and the random policy's)", min=1)
    probe_seed: int = arg(1000, "tracks of the probe: the agent drives the tracks model.py norender would at this "
                                "seed, the random policy one track per seed from here", min=0)
    probe_frames: int = arg(1000, "frames per episode at most", min=1)
    worst: int = arg(8, "worst-reconstructed agent frames in the picture", min=1)
    probe_vae: str = arg("", "the V to probe (a vae.json); empty = the agent's own (--vae_path). The agent drives "
                             "with its own V either way, so that two V's are compared on the same frames")
    out: str = arg("vprobe.png", "the picture; its figures go to the same name with .json")


@dataclass
class PipelineConfig:
    """pipeline.py: every stage in one run folder, then the report."""

    run_dir: str = arg("", "run folder every stage works in (empty = runs/<config name>)")
    extract_ranks: int = arg(64, "MPI ranks of the extraction (the original ran 64 extract.py processes)", min=1)
    seed: int = arg(0, "replicate seed S: the k-th seeded stage gets S * (2k + 1) mod (2^31 - 1), printed at the "
                       "start; 0 = every stage's default seed 0", min=0)
    rounds: int = arg(1, "rounds of iterative training (the paper's section on it; 1 = the original's one round): "
                         "round k > 1 runs every stage again in <run_dir>/round<k>/, where the last round's agent "
                         "drives a share of the new episodes and V, M and C continue from the last round (see "
                         "--round_continue); options --next.<stage>.<field> VALUE apply to rounds 2 on only", min=1)
    round_agent_share: float = arg(0.4, "rounds > 1: the share of episodes the last round's agent drives "
                                        "(extract.py --agent_share); the others are the random policy's", min=0.0)
    round_action_noise: float = arg(0.0, "rounds > 1: extract.py --action_noise of the agent's episodes", min=0.0)
    round_continue: str = arg("vmc", "rounds > 1: which of V, M and C start from the last round's weights and mean "
                                     "(vae_train.py, rnn_train.py, train.py --init_from); the others start fresh",
                              choices=("vmc", "vm", "v", "vc", "mc", "m", "c", ""))
    variant: str = arg("", "a named variant of the pipeline: dream = extract.py --record_rewards 1, rnn_train.py "
                           "--reward_done 1 and train.py --env_name carracing_dream (the controller trained inside "
                           "M's dream, evaluated on the real track); empty = the original's pipeline",
                       choices=("", "dream"), before="")
    first_round_config: str = arg("", "rounds > 1: the preset round 1 runs at (empty = --config); rounds 2 on run at "
                                      "--config (the medium preset: round 1 is the small preset's whole run)")
    restart_generations: int = arg(0, "CMA-ES restarted after train.py's run (0 = none, the original's one run): "
                                      "train.py runs again for this many generations from the run's last mean "
                                      "(<log base>.json) at its last step size (the .hist.json's rms_stdev), with a "
                                      "fresh covariance and paths, at --restart_num_episode episodes a candidate; the "
                                      "evaluation, the report and a next round take the restarted run's agent "
                                      "(issue 29's row switch)", min=0)
    restart_num_episode: int = arg(4, "episodes per candidate of the restarted run (its logs are named by it, so it "
                                      "differs from --train.num_episode)", min=1)


@dataclass
class ReportConfig:
    """report.py: pictures and summary.json of a finished run (run from its run folder)."""

    report_dir: str = arg("report", "folder the pictures and summary.json are written to")
    record_dir: str = arg("record", "episodes of extract.py (the reconstruction GIF uses the first one)")
    log_base: str = arg("", "train.py's log base (<base>.hist.json, <base>.best.json, ...); empty = the one train.py "
                            "writes at this --config")
    vae_tensorboard: str = arg(VAEConfig.log_dir, "vae_train.py's TensorBoard folder")
    rnn_tensorboard: str = arg(RNNTrainConfig.log_dir, "rnn_train.py's TensorBoard folder")
    dream_temperatures: str = arg("1.15,0.5", "comma-separated temperatures of the dream GIFs")
    gif_frames: int = arg(300, "env frames shown in each GIF (every 2nd frame is kept)", min=2)
    seed: int = arg(0, "seed of the agent's episode and of the dreams", min=0)


# The data, V and M of the budget presets (`small`, `medium`), from 2 MPI ranks.
SMALL_V_AND_M = {
    ExtractConfig: dict(max_trials=50),
    VAEConfig: dict(num_epoch=5, log_every=50),
    RNNConfig: dict(num_steps=100),
    RNNTrainConfig: dict(checkpoint_every=20),
    PipelineConfig: dict(extract_ranks=2),
}

PRESETS = {
    "paper": {},
    "smoke": {
        ExtractConfig: dict(max_trials=16, max_frames=200),
        VAEConfig: dict(num_epoch=10, log_every=10, save_every=100, checkpoint_every=20),
        RNNConfig: dict(num_steps=100, max_seq_len=199, batch_size=16),
        RNNTrainConfig: dict(checkpoint_every=25, threads=1),
        ModelConfig: dict(max_episode_length=200),
        EvalConfig: dict(num_episode=4),
        TrainConfig: dict(num_episode=1, eval_steps=2, num_worker=2, num_worker_trial=2, max_generations=4),
        DreamConfig: dict(max_frames=100),
        PipelineConfig: dict(extract_ranks=2),
    },
    # A driving agent on one 2-core CPU in at most 3 hours (README, "The trained agent"): 100
    # episodes for V and M, 5,000 VAE steps, 100 MDN-RNN steps, then CMA-ES with 16 candidates x
    # 4 full episodes on 16 lockstep envs per worker (the fastest K measured, bench/rollout.py
    # --sweep; results are the same for every K > 1), trained on the approx renderer; the
    # evaluations (train.py's of the CMA mean, and model.py's) keep the exact renderer.
    # --no_reward_steps is not used: at 50 it learnt less per generation (more per hour) in the
    # 26 generations measured, and how it ends is unmeasured (README, the levers).
    "small": {
        **SMALL_V_AND_M,
        ModelConfig: dict(envs_per_worker=16),
        TrainConfig: dict(num_episode=4, eval_steps=10, num_worker=2, num_worker_trial=8, max_generations=90,
                          train_renderer="approx"),
    },
    # Every preset runs the original's CMA step-size rule (csa): the study's row g measured it against
    # the tpa that the runs before row g used, at the small preset (README, the study).
    # The longer budget (README, "The trained agent"): two rounds on the same 2 cores (the study's
    # row c: a second round on agent-driven data beat twice the CMA-ES budget). Round 1 is the
    # small preset's run. Round 2: 100 new episodes, 40 driven by round 1's agent; V continues one
    # epoch from round 1's, M starts fresh, C continues from round 1's mean (row c2); CMA-ES with
    # 64 candidates x 1 episode (issue 29's row p: +636 over 16 x 4 at the same episodes; the
    # original's generation is 64 x 16) for 347 generations, then CMA-ES restarted from that mean at
    # its step size, at 64 x 4 for 73 generations (the study's row switch: at 64 x 1 the run stalled
    # from generation ~240 with its step size at ~0.075; the restart gained +39 held out, 64 x 4
    # another +18): 40,896 episodes, the medium budget of 40 of the original's generations (40,960)
    # to within one, the mean evaluated (64 episodes, exact renderer) every 10.
    "medium": {
        **SMALL_V_AND_M,
        PipelineConfig: dict(extract_ranks=2, rounds=2, first_round_config="small", round_continue="vc",
                             restart_generations=73, restart_num_episode=4),
        VAEConfig: dict(num_epoch=1, log_every=50),
        ModelConfig: dict(envs_per_worker=16),
        TrainConfig: dict(num_episode=1, eval_steps=10, num_worker=2, num_worker_trial=32, max_generations=347,
                          train_renderer="approx"),
    },
}


def preset(cls, name="paper", **overrides):
    """An instance of config class `cls` at preset `name`, with `overrides` on top."""
    if name not in PRESETS:
        raise UserError(f"--config {name}: unknown preset (choose from {', '.join(PRESETS)})")
    return _checked(dataclasses.replace(cls(), **{**PRESETS[name].get(cls, {}), **overrides}))


def torch_device(name):
    """The torch device a `device` field names: auto = CUDA when present, else the CPU."""
    import torch  # here, so that config (and extract.py) stays free of torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a torch device (auto, cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    return device


def _checked(cfg):
    for f in dataclasses.fields(cfg):
        value, meta = getattr(cfg, f.name), f.metadata
        if meta.get("choices") is not None and value not in meta["choices"]:
            choices = ", ".join(map(str, meta["choices"]))
            raise UserError(f"--{f.name} {value}: must be one of {choices}")
        if meta.get("min") is not None and value < meta["min"]:
            raise UserError(f"--{f.name} {value}: must be at least {meta['min']}")
        if meta.get("max") is not None and value > meta["max"]:
            raise UserError(f"--{f.name} {value}: must be at most {meta['max']}")
    return cfg


def _bool(text):
    value = text.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false or 1/0, got {text!r}")


_METAVARS = {int: "N", float: "X", str: "TEXT", _bool: "BOOL"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError(message)


def parser(*classes, description=None):
    """An ArgumentParser with `--config NAME` and one `--field VALUE` per field of `classes`.

    A script may add its own positional arguments to it before calling `parse_args`.
    """
    p = _Parser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="paper", metavar="NAME",
                   help=f"preset the other values start from: {' or '.join(PRESETS)} (default: paper)")
    for cls in classes:
        group = p.add_argument_group(cls.__name__, (cls.__doc__ or "").strip().splitlines()[0])
        for f in dataclasses.fields(cls):
            scale = ", ".join([f"paper: {f.default}"] + [f"{name}: {values[cls][f.name]}" for name, values in PRESETS.items()
                                                          if f.name in values.get(cls, {})])
            kind = _bool if f.type in (bool, "bool") else {"int": int, "float": float, "str": str}.get(f.type, f.type)
            flag_only = dict(nargs="?", const=True) if kind is _bool else {}  # `--resume` = `--resume 1`
            group.add_argument(*f.metadata["flags"], f"--{f.name}", dest=f.name, type=kind, **flag_only,
                               default=argparse.SUPPRESS, metavar=_METAVARS.get(kind, "VALUE"),
                               help=f"{f.metadata['help']} ({scale})".replace("%", "%%"))
    return p


def from_args(args, *classes):
    """The configs of `classes` from parsed `args`: preset `args.config`, then the flags given."""
    given = vars(args)
    return tuple(preset(cls, given.get("config", "paper"),
                        **{f.name: given[f.name] for f in dataclasses.fields(cls) if f.name in given})
                 for cls in classes)


def parse(*classes, description=None, argv=None):
    """Parse `argv` (default sys.argv) into one config per class; one class gives one config."""
    args = parser(*classes, description=description).parse_args(sys.argv[1:] if argv is None else argv)
    configs = from_args(args, *classes)
    return configs[0] if len(configs) == 1 else configs
