"""The MDN-RNN (M): an LSTM over [z, action] and a mixture-density head predicting the next z.

A port of the original's `rnn/rnn.py`. The LSTM has the semantics of TF's
`LayerNormBasicLSTMCell`: one fused kernel over [x, h] with gate columns i, j, f, o, the forget
bias +1.0 added at run time, and (off by default, as in the original) layer norm and the three
dropouts. The weights are kept in TF's own layout, so the weight JSON maps one to one:

    JSON  TF variable            shape         here                  torch.lstm (fused training path)
    0     RNN/output_w           (256, 480)    output_w              -
    1     RNN/output_b           (480,)        output_b              -
    2     RNN/.../kernel         (291, 1024)   kernel                weight_ih = kernel[:35, P].T, weight_hh = kernel[35:, P].T
    3     RNN/.../bias           (1024,)       bias                  bias_ih = bias[P] + forget_bias_f, bias_hh = 0
    (use_layer_norm=1 instead of 3: {input,transform,forget,output,state}/{gamma,beta} (256,) each
     -> ln_gamma[k], ln_beta[k]; that cell has no bias and always runs step by step)

P reorders the gate columns from TF's i, j, f, o to PyTorch's i, f, g(=j), o; kernel rows are
[z (32), action (3), h (256)]. The fused path derives its weights from `kernel` on every call
(differentiably), so training and acting share one set of parameters and nothing is copied by hand.

The MDN output of one step (480 values) is laid out per z dimension in blocks of 15:
[logmix 5 | mean 5 | logstd 5]; logmix is log-softmaxed, logstd is not clamped.

With hps.reward_done = 1 (an extension, off by default: the original's CarRacing M has none) a
second head on the same LSTM output predicts each step's done logit and reward:

    JSON  TF name (ours)         shape         here
    4     RNN/head_w             (256, 2)      head_w   column 0: done logit, column 1: reward
    5     RNN/head_b             (2,)          head_b
    (with layer norm: arrays 13 and 14)

The done logit is the original's Doom M's restart output (its extra output column, a
sigmoid cross-entropy weighted by restart_factor on done = 1, done when the logit > 0); the
reward is a regression with squared error (`reward_done_loss`). The head's arrays come after
the original's, so the original's loader (which reads its variables' arrays in order and stops
there) loads such a file as a plain M.
"""
import dataclasses
import math
from collections import namedtuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import config
from files import tfjson

MODE_ZCH = 0
MODE_ZC = 1
MODE_Z = 2
MODE_Z_HIDDEN = 3  # z -> 40 tanh hidden units (the controller's business)
MODE_ZH = 4

FORGET_BIAS = 1.0  # LayerNormBasicLSTMCell's default, added at run time, never stored
LN_EPSILON = 1e-12  # tf.contrib.layers.layer_norm's variance epsilon
LN_SCOPES = ("input", "transform", "forget", "output", "state")
LOG_SQRT_TWO_PI = math.log(math.sqrt(2.0 * math.pi))
HEAD_OUTPUTS = 2  # reward_done's head: done logit, reward

# the original's namedtuple (so `_replace`, `_asdict`, unpacking work), with config.RNNConfig's fields in their order:
# the original's, ending at is_training, then our extensions with their defaults (off), so that the original's
# HyperParams(num_steps=..., ..., is_training=...) still builds one
_FIELDS = dataclasses.fields(config.RNNConfig)
_ORIGINAL = [f.name for f in _FIELDS].index("is_training") + 1  # how many of them are the original's
HyperParams = namedtuple("HyperParams", [f.name for f in _FIELDS], defaults=[f.default for f in _FIELDS[_ORIGINAL:]])
# where the original's rnn/rnn.py default_hps differs from its rnn_train.py's (config.RNNConfig's values)
MODULE_DEFAULTS = dict(num_steps=2000, max_seq_len=1000)


def default_hps():
    """The original's rnn/rnn.py default_hps: config.RNNConfig's values but num_steps 2000 and
    max_seq_len 1000 (rnn_train.py trains with its own 4000 and 999)."""
    return as_hps(config.RNNConfig())._replace(**MODULE_DEFAULTS)


def as_hps(hps):
    """`hps` as a HyperParams: a HyperParams as is, a config.RNNConfig (rnn_train.py's command line) converted."""
    return hps if isinstance(hps, HyperParams) else HyperParams(**dataclasses.asdict(hps))


hps_model = default_hps()
hps_sample = hps_model._replace(batch_size=1, max_seq_len=1, use_recurrent_dropout=0, is_training=0)



def hps_of(jsonfile, hps=hps_sample):
    """`hps` with the sizes of the MDN-RNN in `jsonfile` (rnn_size, z width, num_mixture, layer
    norm), so that an M trained with any --rnn_size or --num_mixture loads wherever it is used."""
    return _sized(hps, [a.shape for a in tfjson.read_arrays(jsonfile)])


def _sized(hps, shapes):
    """`hps` at the sizes the TF `shapes` of an rnn.json say: output_w (n, 3 K z), output_b, kernel
    (z + 3 + n, 4 n), then bias or the layer norms; other shapes keep `hps` (loading names the problem)."""
    hps = as_hps(hps)
    heads = len(shapes) in (6, 5 + 2 * len(LN_SCOPES)) and tuple(shapes[-1]) == (HEAD_OUTPUTS,)
    if heads:
        hps, shapes = hps._replace(reward_done=1), shapes[:-2]
    elif getattr(hps, "reward_done", 0):
        hps = hps._replace(reward_done=0)
    if len(shapes) not in (4, 3 + 2 * len(LN_SCOPES)) or len(shapes[0]) != 2 or len(shapes[2]) != 2:
        return hps
    n = shapes[2][1] // 4
    z = shapes[2][0] - n - (hps.input_seq_width - hps.output_seq_width)
    if n < 1 or z < 1 or shapes[0][1] % (3 * z):
        return hps
    return as_hps(hps)._replace(rnn_size=n, output_seq_width=z, input_seq_width=shapes[2][0] - n,
                                num_mixture=shapes[0][1] // (3 * z), use_layer_norm=int(len(shapes) > 4))


LSTMStateTuple = namedtuple("LSTMStateTuple", ("c", "h"))  # TF's order: c first


def _glorot_uniform_(t):
    """TF's default initializer (glorot_uniform), fans as TF computes them (1-D: fan_in = fan_out = n)."""
    fan_in, fan_out = (t.shape[0], t.shape[0]) if t.dim() == 1 else t.shape
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return t.uniform_(-limit, limit)


class MDNRNN(nn.Module):
    """LayerNormBasicLSTMCell(rnn_size) + MDN head, in TF's variable layout (see the table above).

    forward(x) runs whole sequences (training); step(x, state) runs one time step for B
    environments at once (acting); both use the same parameters. `hps` is a HyperParams (or a
    config.RNNConfig); the original's TF-only `gpu_mode` and `reuse` are accepted and have no
    effect (the device is the module's: `.to(device)`).
    """

    def __init__(self, hps=hps_model, gpu_mode=True, reuse=False):
        super().__init__()
        self.hps = hps = as_hps(hps)
        n, width = hps.rnn_size, hps.input_seq_width
        nout = hps.output_seq_width * hps.num_mixture * 3
        self.output_w = nn.Parameter(_glorot_uniform_(torch.empty(n, nout)))
        self.output_b = nn.Parameter(_glorot_uniform_(torch.empty(nout)))
        self.kernel = nn.Parameter(_glorot_uniform_(torch.empty(width + n, 4 * n)))
        if hps.use_layer_norm:
            self.ln_gamma = nn.Parameter(torch.ones(len(LN_SCOPES), n))
            self.ln_beta = nn.Parameter(torch.zeros(len(LN_SCOPES), n))
        else:
            self.bias = nn.Parameter(_glorot_uniform_(torch.empty(4 * n)))
        if getattr(hps, "reward_done", 0):
            self.head_w = nn.Parameter(_glorot_uniform_(torch.empty(n, HEAD_OUTPUTS)))
            self.head_b = nn.Parameter(_glorot_uniform_(torch.empty(HEAD_OUTPUTS)))
        i, j, f, o = torch.arange(4 * n).view(4, n)
        self.register_buffer("torch_gate_order", torch.cat([i, f, j, o]), persistent=False)
        self.register_buffer("torch_forget_bias", torch.cat([torch.zeros(n), torch.full((n,), FORGET_BIAS),
                                                             torch.zeros(2 * n)]), persistent=False)

    # --- the cell -----------------------------------------------------------------------------

    def initial_state(self, batch_size=1):
        """TF's `cell.zero_state`: zeros of shape (batch_size, rnn_size) for c and h."""
        zeros = torch.zeros(batch_size, self.hps.rnn_size, device=self.kernel.device)
        return LSTMStateTuple(zeros, zeros.clone())

    def _layer_norm(self, x, k):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) * torch.rsqrt(var + LN_EPSILON) * self.ln_gamma[k] + self.ln_beta[k]

    def _dropout(self, x, use, keep_prob):
        """TF's dropout (scaled by 1 / keep_prob), on by its hps flag alone, as in the original
        (neither is_training nor .eval() turns it off; hps_sample clears only the recurrent one)."""
        return F.dropout(x, p=1.0 - keep_prob) if use else x

    def _cell(self, x, state, recurrent_mask=None):
        """One step of LayerNormBasicLSTMCell on the cell's input x (B, 35); TF's math verbatim.
        `recurrent_mask` (B, rnn_size), ours: a given recurrent dropout mask (0 or 1 / keep) in
        place of the hps flag's own draw (the dream's seeded dropout, dream_env.CarRacingDreamBatch)."""
        hps = self.hps
        c, h = state
        concat = torch.cat([x, h], 1) @ self.kernel
        if not hps.use_layer_norm:
            concat = concat + self.bias
        i, j, f, o = concat.chunk(4, 1)
        if hps.use_layer_norm:
            i, j, f, o = (self._layer_norm(g, k) for k, g in enumerate((i, j, f, o)))
        if recurrent_mask is None:
            g = self._dropout(torch.tanh(j), hps.use_recurrent_dropout, hps.recurrent_dropout_prob)
        else:
            g = torch.tanh(j) * recurrent_mask
        new_c = c * torch.sigmoid(f + FORGET_BIAS) + torch.sigmoid(i) * g
        if hps.use_layer_norm:
            new_c = self._layer_norm(new_c, 4)
        new_h = torch.tanh(new_c) * torch.sigmoid(o)
        return LSTMStateTuple(new_c, new_h)

    def step(self, x, state, recurrent_mask=None):
        """Batched single step for acting: x (B, 35) = [z, action], state = LSTMStateTuple of
        (B, rnn_size) tensors. Returns (output (B, rnn_size), next_state); output is h after
        the output dropout (if enabled), the input of `mdn`. `recurrent_mask`: see `_cell`."""
        x = self._dropout(x, self.hps.use_input_dropout, self.hps.input_dropout_prob)
        state = self._cell(x, state, recurrent_mask)
        return self._dropout(state.h, self.hps.use_output_dropout, self.hps.output_dropout_prob), state

    def _fused(self, x, state):
        """The whole sequence through torch.lstm (cuDNN on GPU), weights derived from `kernel`."""
        width = self.hps.input_seq_width
        w = self.kernel[:, self.torch_gate_order]
        b = self.bias[self.torch_gate_order] + self.torch_forget_bias
        params = [w[:width].t(), w[width:].t(), b, torch.zeros_like(b)]
        hx = (state.h.unsqueeze(0).contiguous(), state.c.unsqueeze(0).contiguous())
        out, h, c = torch.lstm(x, hx, params, True, 1, 0.0, self.training, False, True)
        return out, LSTMStateTuple(c[0], h[0])

    def forward(self, x, state=None, heads=False):
        """x (B, T, 35) from `state` (default zeros) -> (logmix, mean, logstd) each (B, T, 32, 5)
        predicting z_{t+1}, and the final state; with `heads` (hps.reward_done) then also the
        heads' (done logit, reward), each (B, T)."""
        hps = self.hps
        if state is None:
            state = self.initial_state(x.shape[0])
        x = self._dropout(x, hps.use_input_dropout, hps.input_dropout_prob)
        if hps.use_layer_norm or hps.use_recurrent_dropout:
            outputs = []
            for t in range(x.shape[1]):
                state = self._cell(x[:, t], state)
                outputs.append(state.h)
            out = torch.stack(outputs, 1)
        else:
            out, state = self._fused(x, state)
        out = self._dropout(out, hps.use_output_dropout, hps.output_dropout_prob)
        return (*self.mdn(out), state, *(self.heads(out) if heads else ()))

    # --- the mixture density head ---------------------------------------------------------------

    def mdn(self, out):
        """LSTM output (..., rnn_size) -> (logmix, mean, logstd), each (..., 32, 5)."""
        hps = self.hps
        y = out @ self.output_w + self.output_b
        y = y.view(*out.shape[:-1], hps.output_seq_width, 3 * hps.num_mixture)
        logmix, mean, logstd = y.split(hps.num_mixture, -1)
        return torch.log_softmax(logmix, -1), mean, logstd

    def heads(self, out):
        """LSTM output (..., rnn_size) -> (done logit, reward), each (...,); needs hps.reward_done."""
        y = out @ self.head_w + self.head_b
        return y[..., 0], y[..., 1]

    # --- TF weight JSON ---------------------------------------------------------------------------

    def _tf_variables(self):
        """Our parameters as TF's trainable variables, in creation order (the JSON order)."""
        tensors = [self.output_w, self.output_b, self.kernel]
        if self.hps.use_layer_norm:
            for k in range(len(LN_SCOPES)):
                tensors += [self.ln_gamma[k], self.ln_beta[k]]
        else:
            tensors.append(self.bias)
        if getattr(self.hps, "reward_done", 0):
            tensors += [self.head_w, self.head_b]
        return tensors

    @classmethod
    def from_json(cls, jsonfile, hps=hps_sample):
        """The MDN-RNN of `jsonfile` at the file's sizes (`hps_of`), its JSON parsed once."""
        arrays = tfjson.read_arrays(jsonfile)
        rnn = cls(_sized(hps, [a.shape for a in arrays]))
        rnn._set_tf_arrays(tfjson.scaled(jsonfile, arrays, rnn.tf_shapes()))
        return rnn

    def load_json(self, jsonfile="rnn.json", fresh_heads=False):
        """Load the original's quantized weight JSON (e.g. its trained rnn/rnn.json). With
        `fresh_heads` (rnn_train.py --init_from), an M with reward and done heads also takes a file
        without them (the original's M): its arrays load, the heads keep their initialisation.
        Returns False when the heads kept their initialisation (that case), True otherwise."""
        shapes = self.tf_shapes()
        if fresh_heads and getattr(self.hps, "reward_done", 0):
            arrays = tfjson.read_arrays(jsonfile)
            if len(arrays) == len(shapes) - 2:  # the head's two arrays come last (module docstring)
                self._set_tf_arrays(tfjson.scaled(jsonfile, arrays, shapes[:-2]))
                return False
        self._set_tf_arrays(tfjson.load(jsonfile, shapes))
        return True

    def tf_shapes(self):
        """The TF shapes of the weights, in the order of rnn.json (as ConvVAE.tf_shapes)."""
        return [tuple(t.shape) for t in self._tf_variables()]

    def _set_tf_arrays(self, arrays):
        tensors = self._tf_variables()
        with torch.no_grad():
            for t, a in zip(tensors, arrays):
                t.copy_(torch.from_numpy(a))

    def save_json(self, jsonfile="rnn.json"):
        """Write the weights in the original's exact JSON bytes (atomically)."""
        tfjson.save(jsonfile, [t.detach().cpu().numpy() for t in self._tf_variables()])

    # --- the original's parameter API (JSON scale: weight * 10000, TF layout) ----------------------

    def _tf_names(self):
        cell = "mdn_rnn/RNN/layer_norm_basic_lstm_cell/"
        names = ["mdn_rnn/RNN/output_w:0", "mdn_rnn/RNN/output_b:0", cell + "kernel:0"]
        if self.hps.use_layer_norm:
            return names + [f"{cell}{k}/{v}:0" for k in LN_SCOPES for v in ("gamma", "beta")]
        return names + [cell + "bias:0"]

    def get_model_params(self):
        """(params, shapes, names) as the original: params are round(weight * 10000) as nested int lists."""
        arrays = [t.detach().cpu().numpy() for t in self._tf_variables()]
        return [q.tolist() for q in tfjson.quantize(arrays)], [a.shape for a in arrays], self._tf_names()

    def get_random_model_params(self, stdev=0.5):
        """Cauchy-random arrays of the TF shapes, times `stdev` (JSON scale, as the original)."""
        return [np.random.standard_cauchy(s) * stdev for s in self.tf_shapes()]

    def set_random_params(self, stdev=0.5):
        self.set_model_params(self.get_random_model_params(stdev))

    def set_model_params(self, params):
        """Assign JSON-scale params (weight * 10000, TF layout): each is divided by 10000."""
        for p, shape in zip(params, self.tf_shapes(), strict=True):
            if np.shape(p) != shape:
                raise ValueError(f"inconsistent shape: {np.shape(p)} for {shape}")
        self._set_tf_arrays([(np.asarray(p, dtype=np.float64) / tfjson.SCALE).astype(np.float32) for p in params])

    def init_session(self):
        """The original's TF session start: nothing to do (the weights exist from construction)."""

    def close_sess(self):
        """The original's TF session close: nothing to do."""


def mdn_loss(logmix, mean, logstd, y):
    """The original's cost: -mean over every (b, t, d) of logsumexp_k(logmix + log N(y; mean, std))."""
    y = y.unsqueeze(-1)
    v = logmix - 0.5 * ((y - mean) / torch.exp(logstd)) ** 2 - logstd - LOG_SQRT_TWO_PI
    return -torch.logsumexp(v, -1).mean()


def reward_done_loss(done_logit, reward_pred, done, reward, restart_factor, reward_mask=None, asymmetry=1.0):
    """(done cost, reward cost) of the heads against the recorded done (0/1) and reward. Done: the
    original's Doom M's restart cost, mean over (b, t) of (1 + done * (restart_factor - 1)) *
    sigmoid_cross_entropy(done, logit); reward: mean squared error, each step's weighted by
    `asymmetry` where the prediction is above the reward (Sha01in's port), over the steps where
    `reward_mask` (0/1, the shape of reward) is 1 when given (`episode_steps`: the real episode's)."""
    done = done.to(done_logit.dtype)
    weight = 1.0 + done * (restart_factor - 1.0)
    done_cost = (weight * F.binary_cross_entropy_with_logits(done_logit, done, reduction="none")).mean()
    error = reward_pred - reward
    squared = torch.where(error > 0, asymmetry, 1.0) * error ** 2
    if reward_mask is None:
        return done_cost, squared.mean()
    reward_mask = reward_mask.to(squared.dtype)
    return done_cost, (squared * reward_mask).sum() / reward_mask.sum().clamp(min=1.0)


def episode_steps(done):
    """1 where a step (B, T) is part of the real episode: up to and including its first done. The
    recorded episodes run on past the env's end (full_episode), and the steps after it repeat the
    end's reward (off the playfield: -100 every step), which the real env pays once."""
    done = done.to(torch.int64)
    return (torch.cumsum(done, -1) - done) == 0


# --- the original's step API (numpy in, numpy out; batch 1) ----------------------------------------

def _as_input(rnn, z, a):
    x = np.concatenate([np.asarray(z, np.float32).reshape(-1), np.asarray(a, np.float32).reshape(-1)])
    return torch.from_numpy(x).view(1, -1).to(rnn.kernel.device)


def _as_state(rnn, state):
    device = rnn.kernel.device
    return LSTMStateTuple(torch.as_tensor(state.c, device=device), torch.as_tensor(state.h, device=device))


def _to_numpy(state):
    return LSTMStateTuple(state.c.cpu().numpy(), state.h.cpu().numpy())


def rnn_init_state(rnn):
    """Zero state: LSTMStateTuple(c, h) of float32 numpy arrays (1, rnn_size)."""
    return _to_numpy(rnn.initial_state(1))


def rnn_next_state(rnn, z, a, prev_state):
    """The state after feeding z (32,) and action a (3,) from prev_state (one env step).

    The agent calls this once per env step. With the default cell on CPU it runs the cell in
    numpy on views of the same parameters (about 2-3x cheaper than torch's per-op overhead at
    batch 1); otherwise it runs `rnn.step`.
    """
    hps = rnn.hps
    if rnn.kernel.device.type == "cpu" and not (hps.use_layer_norm or hps.use_recurrent_dropout
                                                 or hps.use_input_dropout):
        return _numpy_cell(rnn, z, a, prev_state)
    with torch.inference_mode():
        return _to_numpy(rnn.step(_as_input(rnn, z, a), _as_state(rnn, prev_state))[1])


def _numpy_cell(rnn, z, a, state):
    """`MDNRNN._cell` without layer norm and dropout, in numpy on the parameters' own memory."""
    kernel, bias = rnn.kernel.detach().numpy(), rnn.bias.detach().numpy()
    x = np.concatenate([np.asarray(z, np.float32).reshape(-1), np.asarray(a, np.float32).reshape(-1),
                        np.asarray(state.h, np.float32).reshape(-1)])
    i, j, f, o = (x @ kernel + bias).reshape(4, -1)
    c = state.c[0] / (1.0 + np.exp(-(f + FORGET_BIAS))) + np.tanh(j) / (1.0 + np.exp(-i))
    h = np.tanh(c) / (1.0 + np.exp(-o))
    return LSTMStateTuple(c[None], h[None])


@torch.inference_mode()
def mdn_step(rnn, z, a, prev_state):
    """(logmix, mean, logstd, next_state): the mixture over the next z, each (32, 5), and the
    state after feeding (z, a); the original's `sample_sequence` step."""
    out, state = rnn.step(_as_input(rnn, z, a), _as_state(rnn, prev_state))
    logmix, mean, logstd = (t[0].cpu().numpy() for t in rnn.mdn(out))
    return logmix, mean, logstd, _to_numpy(state)


@torch.inference_mode()
def dream_step(rnn, z, a, prev_state):
    """`mdn_step` of an M with reward and done heads: (logmix, mean, logstd, reward, done_logit,
    next_state); reward and done_logit are floats, the heads' prediction for the step (z, a)."""
    out, state = rnn.step(_as_input(rnn, z, a), _as_state(rnn, prev_state))
    logmix, mean, logstd = (t[0].cpu().numpy() for t in rnn.mdn(out))
    done_logit, reward = (float(t[0]) for t in rnn.heads(out))
    return logmix, mean, logstd, reward, done_logit, _to_numpy(state)


def rnn_output_size(mode, hps=hps_sample):
    """Width of the controller's input for `mode`."""
    z, n = hps.output_seq_width, hps.rnn_size
    if mode == MODE_ZCH:
        return z + 2 * n
    if mode in (MODE_ZC, MODE_ZH):
        return z + n
    return z  # MODE_Z or MODE_Z_HIDDEN


def rnn_output(state, z, mode):
    """The controller's input: z followed by c and/or h of the state, as `mode` says. One agent:
    z (32,) and a state of (1, rnn_size) arrays give (n,); a batch: z (K, 32) and a state of
    (K, rnn_size) arrays or tensors give (K, n)."""
    parts = {MODE_ZCH: (state.c, state.h), MODE_ZC: (state.c,), MODE_ZH: (state.h,)}.get(mode, ())  # else MODE_Z(_HIDDEN)
    if np.ndim(z) == 1:
        return np.concatenate([z, *(p[0] for p in parts)])
    return np.concatenate([z, *(np.asarray(p) for p in parts)], axis=1)


# --- temperature sampling ------------------------------------------------------------------------

def get_pi_idx(x, pdf):
    """Index of the first component whose cumulative probability reaches x. When rounding leaves
    the total below x the original returned -1, which then indexes the last component; so do we."""
    below = np.count_nonzero(np.cumsum(pdf) < x)
    return min(below, len(pdf) - 1)


def sample_z(logmix, mean, logstd, temperature=1.0, rng=np.random):
    """One z' (32,) from the mixture (each (32, 5)) at `temperature`, drawing from `rng` exactly
    as the original: one rand() per dimension to pick its component, then randn(32). `rng` is
    np.random, a RandomState (same stream as the original's calls) or a Generator."""
    logmix2 = np.asarray(logmix, np.float64) / temperature
    pdf = np.exp(logmix2 - logmix2.max())
    pdf /= pdf.sum(axis=1, keepdims=True)
    idx = np.array([get_pi_idx(rng.random(), p) for p in pdf])
    rows = np.arange(len(idx))
    chosen_mean, chosen_logstd = mean[rows, idx], logstd[rows, idx]
    return chosen_mean + np.exp(chosen_logstd) * rng.standard_normal(len(idx)) * np.sqrt(temperature)


def sample_z_batch(logmix, mean, logstd, temperature, rngs):
    """`sample_z` for K dreams at once: logmix, mean, logstd (K, 32, 5) -> z' (K, 32) float64,
    dream k drawing from its own `rngs[k]` exactly what `sample_z` draws (32 uniforms, then 32
    normals), so that dream k is the one `sample_z` with that generator gives."""
    logmix2 = np.asarray(logmix, np.float64) / temperature
    pdf = np.exp(logmix2 - logmix2.max(-1, keepdims=True))
    pdf /= pdf.sum(-1, keepdims=True)
    draws = [(rng.random(logmix2.shape[1]), rng.standard_normal(logmix2.shape[1])) for rng in rngs]
    uniform, normal = (np.array(d) for d in zip(*draws))
    idx = np.minimum(np.count_nonzero(np.cumsum(pdf, -1) < uniform[..., None], -1), pdf.shape[-1] - 1)[..., None]
    chosen_mean, chosen_logstd = (np.take_along_axis(np.asarray(a, np.float64), idx, -1)[..., 0] for a in (mean, logstd))
    return chosen_mean + np.exp(chosen_logstd) * (normal * np.sqrt(temperature))  # the original's order


def sample_sequence(sess, s_model, hps, init_z, actions, temperature=1.0, seq_len=1000, rng=np.random):
    """Dream a sequence of seq_len latents (seq_len, hps.output_seq_width) from init_z under the
    given actions with the MDN-RNN `s_model`, as the original. `sess` is TF-only and ignored."""
    rnn = s_model
    strokes = np.zeros((seq_len, hps.output_seq_width), dtype=np.float32)
    z, state = np.asarray(init_z), rnn_init_state(rnn)
    for i in range(seq_len):
        logmix, mean, logstd, state = mdn_step(rnn, z, actions[i], state)
        z = sample_z(logmix, mean, logstd, temperature, rng)
        strokes[i] = z
    return strokes
