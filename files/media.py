"""GIFs of episodes, reconstructions and dreams, each with its caption inside the picture.

    with GifWriter("render.gif", caption="seed 7") as record:   # streamed: every 2nd frame, half size
        record(frame)
    save_gif("recon.gif", frames, caption="real | reconstruction")   # in memory, upscaled x3

Every file is written beside its target and renamed over it once complete.
"""
import io
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from files import atomic

MS_PER_FRAME = 40  # 25 fps: every 2nd frame of the 50 fps env plays at its real speed
CAPTION_HEIGHT = 20


def captioned(frame, text):
    """`frame` (H, W, 3) uint8 with a black strip of white `text` above it."""
    if not text:
        return frame
    strip = Image.new("RGB", (frame.shape[1], CAPTION_HEIGHT))
    ImageDraw.Draw(strip).text((4, 3), text, fill=(255, 255, 255), font=ImageFont.load_default(size=13))
    return np.concatenate([np.asarray(strip), frame], axis=0)


def to_uint8(frame):
    """Floats in [0, 1] (V's decodings) or uint8 -> uint8."""
    return frame if frame.dtype == np.uint8 else (np.clip(frame, 0, 1) * 255).round().astype(np.uint8)


def save_gif(path, frames, caption="", scale=3):
    """A GIF of `frames` (H, W, 3, floats in [0, 1] or uint8) upscaled `scale` times, captioned."""
    import imageio.v3 as iio

    big = [captioned(np.kron(to_uint8(f), np.ones((scale, scale, 1), np.uint8)), caption) for f in frames]
    atomic.write_bytes(path, iio.imwrite("<bytes>", big, extension=".gif", duration=MS_PER_FRAME, loop=0))


class GifWriter:
    """Streams every 2nd frame at half size (25 fps of the 50 fps env) into a GIF written beside
    `path`, with `caption` above each frame, and renamed over `path` when the episode is complete."""

    def __init__(self, path, caption=""):
        self.path, self.caption, self.count = path, caption, 0
        self.tmp = os.path.join(os.path.dirname(path) or ".", "." + os.path.basename(path) + ".tmp.gif")

    def __enter__(self):
        import imageio.v2 as imageio

        os.makedirs(os.path.dirname(self.tmp), exist_ok=True)
        self.writer = imageio.get_writer(self.tmp, mode="I", duration=MS_PER_FRAME, loop=0)
        return self

    def __call__(self, frame):
        if self.count % 2 == 0:
            self.writer.append_data(captioned(np.ascontiguousarray(frame[::2, ::2]), self.caption))
        self.count += 1

    def __exit__(self, kind, *_):
        self.writer.close()
        if kind is None:
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)


def png_bytes(fig):
    """A matplotlib figure as PNG bytes (closed afterwards)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
