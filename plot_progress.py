"""Plot a train.py run (or the original's) from its logs, as the original's plotting notebook.

    python plot_progress.py log/carracing.cma.16.64                        # -> log/carracing.cma.16.64.png
    python plot_progress.py ../shared/tf_models/log/carracing.cma.16.64 --days --out original.png

Reads `<base>.hist.json` (one row per generation: gen, seconds, mean, min, max, std, rms_stdev,
mean_steps, max_steps) and, when present, `<base>.hist_best.json` (the evaluations of the mean).
Top: the population's mean, min and max reward and the evaluations; bottom: CMA's rms sigma.
The x axis is the generation, or wall-clock days with --days (the notebook's axis).
"""
import argparse
import io
import json
import os

import atomic
from cli import UserError, run


def load_rows(path, required=True):
    try:
        with open(path) as f:
            rows = json.load(f)
    except FileNotFoundError:
        if required:
            raise UserError(f"{path}: no such file (give the log base, e.g. log/carracing.cma.16.64)") from None
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a train.py log ({e})") from None
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) >= 6 for r in rows):
        raise UserError(f"{path}: not a train.py log (expected a list of rows)")
    return rows


def plot(base, out, days=False):
    """Write the PNG of the logs at `base` to `out`; x axis in generations, or wall-clock days."""
    hist = load_rows(base + ".hist.json")
    evals = load_rows(base + ".hist_best.json", required=False)
    if not hist:
        raise UserError(f"{base}.hist.json: no generation logged yet")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = (lambda row: row[1] / 86400.0) if days else (lambda row: row[0])
    gens = [x(r) for r in hist]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, gridspec_kw=dict(height_ratios=(3, 1)))
    top.fill_between(gens, [r[3] for r in hist], [r[4] for r in hist], color="tab:blue", alpha=0.2,
                     label="population min..max")
    top.plot(gens, [r[2] for r in hist], color="tab:blue", lw=1, label="population mean")
    if evals:
        top.plot([x(r) for r in evals], [r[5] for r in evals], "o-", color="tab:red", ms=3, lw=1,
                 label=f"evaluation of the mean (best {max(r[5] for r in evals):.2f})")
    if max(r[4] for r in hist) > 450:  # the "solved" line only where it does not flatten the curves
        top.axhline(900, color="gray", ls=":", lw=1, label="900: solved")
    top.set_ylabel("reward")
    top.set_title(f"{os.path.basename(base)}: {len(hist)} generations, {hist[-1][1] / 86400.0:.2f} days")
    top.legend(loc="lower right")
    top.grid(alpha=0.3)
    bottom.plot(gens, [r[6] for r in hist], color="tab:green", lw=1)
    bottom.set_ylabel("rms sigma")
    bottom.set_xlabel("wall-clock days" if days else "generation")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic.write_bytes(out, buf.getvalue())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("base", help="log base: the path of the logs without .hist.json, e.g. log/carracing.cma.16.64")
    p.add_argument("--days", action="store_true", help="x axis in wall-clock days instead of generations")
    p.add_argument("--out", help="PNG to write (default: <base>.png)")
    args = p.parse_args()
    out = args.out or args.base + ".png"
    plot(args.base, out, args.days)
    print("wrote", out)


if __name__ == "__main__":
    run(main)
