"""The ConvVAE (V) of World Models: the TF original's exact network, loss and weight JSON.

Images are NHWC everywhere, as in the original and in the episode files: (N, 64, 64, 3)
floats in [0, 1]. Convolutions run NCHW inside `forward`; the layout change is one permute
at each end, and the encoder flattens in NHWC order so the TF dense weights apply as they are.

Two interfaces:
- the torch path, for training and batched rollouts (tensors on the module's device):
  `encode_tensor(x) -> (mu, logvar)`, `sample_tensor(mu, logvar) -> z`,
  `decode_tensor(z) -> y`, `forward(x) -> (y, mu, logvar)`, `loss(x, y, mu, logvar)`;
- the original's numpy API, same names and shapes (`encode`, `encode_mu_logvar`, `decode`,
  `get_model_params`, `set_model_params`, `load_json`, `save_json`, ...), which wraps it.
"""
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from config import VAEConfig
from files import tfjson

# TF layout -> torch layout, one line per tensor in the original's creation order (= JSON order).
# Conv kernels: TF HWIO (kh, kw, in, out) -> Conv2d (out, in, kh, kw).
# Transposed-conv kernels: TF (kh, kw, out, in) -> ConvTranspose2d (in, out, kh, kw); both are
# the adjoint of the same cross-correlation, so no spatial flip. Dense: TF (in, out) -> Linear (out, in).
CONV, DECONV, DENSE, BIAS = (3, 2, 0, 1), (3, 2, 0, 1), (1, 0), (0,)
TF_TABLE = [  # (TF variable name, torch parameter, permute applied to the TF array)
    ("enc_conv1/kernel:0", "enc_conv1.weight", CONV), ("enc_conv1/bias:0", "enc_conv1.bias", BIAS),
    ("enc_conv2/kernel:0", "enc_conv2.weight", CONV), ("enc_conv2/bias:0", "enc_conv2.bias", BIAS),
    ("enc_conv3/kernel:0", "enc_conv3.weight", CONV), ("enc_conv3/bias:0", "enc_conv3.bias", BIAS),
    ("enc_conv4/kernel:0", "enc_conv4.weight", CONV), ("enc_conv4/bias:0", "enc_conv4.bias", BIAS),
    ("enc_fc_mu/kernel:0", "enc_fc_mu.weight", DENSE), ("enc_fc_mu/bias:0", "enc_fc_mu.bias", BIAS),
    ("enc_fc_log_var/kernel:0", "enc_fc_log_var.weight", DENSE), ("enc_fc_log_var/bias:0", "enc_fc_log_var.bias", BIAS),
    ("dec_fc/kernel:0", "dec_fc.weight", DENSE), ("dec_fc/bias:0", "dec_fc.bias", BIAS),
    ("dec_deconv1/kernel:0", "dec_deconv1.weight", DECONV), ("dec_deconv1/bias:0", "dec_deconv1.bias", BIAS),
    ("dec_deconv2/kernel:0", "dec_deconv2.weight", DECONV), ("dec_deconv2/bias:0", "dec_deconv2.bias", BIAS),
    ("dec_deconv3/kernel:0", "dec_deconv3.weight", DECONV), ("dec_deconv3/bias:0", "dec_deconv3.bias", BIAS),
    ("dec_deconv4/kernel:0", "dec_deconv4.weight", DECONV), ("dec_deconv4/bias:0", "dec_deconv4.bias", BIAS),
]

_DEFAULT = VAEConfig()
FC_MU = [tf_name for tf_name, _, _ in TF_TABLE].index("enc_fc_mu/kernel:0")  # (1024, z_size) in TF's layout


def reset_graph():
    """The original's TF graph reset, called by every training script: nothing to do here (no
    global graph), kept so those scripts run."""


class ConvVAE(nn.Module):
    """The original's ConvVAE. The constructor keeps the original's signature.

    `batch_size` only sized the original's fixed noise tensor; here the noise always matches
    the input's batch. `reuse` and `gpu_mode` had no effect in the original (its device pin
    did not apply to its own graph) and have none here: move the module with `.to(device)`.
    `is_training` sets train/eval mode (the network has no dropout or batch norm).
    """

    def __init__(self, z_size=_DEFAULT.z_size, batch_size=1, learning_rate=_DEFAULT.learning_rate,
                 kl_tolerance=_DEFAULT.kl_tolerance, is_training=False, reuse=False, gpu_mode=False):
        super().__init__()
        self.z_size, self.batch_size, self.learning_rate = z_size, batch_size, learning_rate
        self.kl_tolerance, self.is_training, self.reuse, self.gpu_mode = kl_tolerance, is_training, reuse, gpu_mode
        self.enc_conv1 = nn.Conv2d(3, 32, 4, stride=2)
        self.enc_conv2 = nn.Conv2d(32, 64, 4, stride=2)
        self.enc_conv3 = nn.Conv2d(64, 128, 4, stride=2)
        self.enc_conv4 = nn.Conv2d(128, 256, 4, stride=2)
        self.enc_fc_mu = nn.Linear(2 * 2 * 256, z_size)
        self.enc_fc_log_var = nn.Linear(2 * 2 * 256, z_size)
        self.dec_fc = nn.Linear(z_size, 4 * 256)
        self.dec_deconv1 = nn.ConvTranspose2d(4 * 256, 128, 5, stride=2)
        self.dec_deconv2 = nn.ConvTranspose2d(128, 64, 5, stride=2)
        self.dec_deconv3 = nn.ConvTranspose2d(64, 32, 6, stride=2)
        self.dec_deconv4 = nn.ConvTranspose2d(32, 3, 6, stride=2)
        for name, param in self.named_parameters():  # TF's default init: glorot-uniform kernels, zero biases
            if name.endswith("bias"):
                nn.init.zeros_(param)
            else:
                nn.init.xavier_uniform_(param)
        self.train(is_training)

    # ---- torch path: tensors on the module's device, images NHWC float in [0, 1] ----

    def encode_tensor(self, x):
        """(N, 64, 64, 3) images -> (mu, logvar), each (N, z_size)."""
        h = x.permute(0, 3, 1, 2)
        h = F.relu(self.enc_conv1(h))
        h = F.relu(self.enc_conv2(h))
        h = F.relu(self.enc_conv3(h))
        h = F.relu(self.enc_conv4(h))
        h = h.permute(0, 2, 3, 1).flatten(1)  # NHWC flatten, as TF's reshape to (N, 1024)
        return self.enc_fc_mu(h), self.enc_fc_log_var(h)

    @staticmethod
    def sample_tensor(mu, logvar, generator=None):
        """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) drawn from `generator` (torch's default if None)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(logvar / 2.0) * eps

    def decode_tensor(self, z):
        """(N, z_size) latents -> (N, 64, 64, 3) images in [0, 1]."""
        h = self.dec_fc(z).view(-1, 4 * 256, 1, 1)  # no activation, as the original
        h = F.relu(self.dec_deconv1(h))
        h = F.relu(self.dec_deconv2(h))
        h = F.relu(self.dec_deconv3(h))
        return torch.sigmoid(self.dec_deconv4(h)).permute(0, 2, 3, 1)

    def forward(self, x, generator=None):
        """The training graph: images -> (reconstruction y, mu, logvar), through a sampled z."""
        mu, logvar = self.encode_tensor(x)
        return self.decode_tensor(self.sample_tensor(mu, logvar, generator)), mu, logvar

    def loss(self, x, y, mu, logvar):
        """(loss, r_loss, kl_loss): per-image summed squared error and per-sample KL floored at
        kl_tolerance * z_size (free bits on the total KL), each averaged over the batch."""
        r_loss = (x - y).square().sum(dim=(1, 2, 3)).mean()
        kl = -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(dim=1)
        kl_loss = kl.clamp(min=self.kl_tolerance * self.z_size).mean()
        return r_loss + kl_loss, r_loss, kl_loss

    # ---- TF layout exchange ----

    def tf_arrays(self):
        """The 22 weights as float32 numpy arrays in TF layout and creation order."""
        params = dict(self.named_parameters())
        return [params[name].detach().permute(*map(int, np.argsort(perm))).cpu().numpy() for _, name, perm in TF_TABLE]

    def tf_shapes(self):
        return [a.shape for a in self.tf_arrays()]

    def set_tf_arrays(self, arrays):
        """Assign weights given as TF-layout arrays in creation order (shapes checked)."""
        params = dict(self.named_parameters())
        with torch.no_grad():
            for (tf_name, name, perm), a in zip(TF_TABLE, arrays, strict=True):
                value = torch.as_tensor(np.asarray(a, dtype=np.float32)).permute(*perm)
                if value.shape != params[name].shape:
                    raise ValueError(f"{tf_name}: shape {tuple(np.shape(a))} does not fit this ConvVAE")
                params[name].copy_(value)

    # ---- the original's numpy API (NHWC numpy arrays in and out) ----

    def _tensor(self, a):
        p = next(self.parameters())
        return torch.as_tensor(np.asarray(a), dtype=p.dtype, device=p.device)

    @torch.no_grad()
    def encode(self, x):
        """Sampled z (N, z_size) for images x (N, 64, 64, 3); the noise comes from np.random."""
        mu, logvar = self.encode_mu_logvar(x)
        return mu + np.exp(logvar / 2.0) * np.random.randn(*logvar.shape).astype(np.float32)

    @torch.no_grad()
    def encode_mu_logvar(self, x):
        mu, logvar = self.encode_tensor(self._tensor(x))
        return mu.cpu().numpy(), logvar.cpu().numpy()

    @torch.no_grad()
    def decode(self, z):
        return self.decode_tensor(self._tensor(z)).cpu().numpy()

    def close_sess(self):
        """The original's TF session close: nothing to do."""

    def get_model_params(self):
        """(params, shapes, names) as the original: params are round(weight * 10000) as nested
        int lists, rounded in float32 as the original did on its float32 variables."""
        arrays = self.tf_arrays()
        params = [q.tolist() for q in tfjson.quantize(arrays)]
        return params, [a.shape for a in arrays], [tf_name for tf_name, _, _ in TF_TABLE]

    def get_random_model_params(self, stdev=0.5):
        """Cauchy-random arrays of the TF shapes, times `stdev` (the original's "spice things up")."""
        return [np.random.standard_cauchy(s) * stdev for s in self.tf_shapes()]

    def set_model_params(self, params):
        """Assign JSON-scale params (weight * 10000, TF layout): each is divided by 10000."""
        self.set_tf_arrays([np.asarray(p, dtype=np.float64) / tfjson.SCALE for p in params])

    def set_random_params(self, stdev=0.5):
        self.set_model_params(self.get_random_model_params(stdev))

    @classmethod
    def from_json(cls, jsonfile, **kwargs):
        """The ConvVAE of `jsonfile`: its z_size is the file's (the width of enc_fc_mu), so a V
        trained with any --z_size loads wherever it is used; `kwargs` as the constructor's."""
        arrays = tfjson.read_arrays(jsonfile)  # parsed once: ~4 M numbers
        mu_kernel = arrays[FC_MU].shape if len(arrays) == len(TF_TABLE) else ()
        vae = cls(z_size=mu_kernel[1] if len(mu_kernel) == 2 else _DEFAULT.z_size, **kwargs)
        vae.set_tf_arrays(tfjson.scaled(jsonfile, arrays, vae.tf_shapes()))
        return vae

    def load_json(self, jsonfile="vae.json"):
        """Read the original's vae.json (a bad file raises cli.UserError naming it)."""
        self.set_tf_arrays(tfjson.load(jsonfile, self.tf_shapes()))

    def save_json(self, jsonfile="vae.json"):
        """Write vae.json byte-identical to the original's writer (atomically)."""
        tfjson.save(jsonfile, self.tf_arrays())
