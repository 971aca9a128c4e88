"""Plot a train.py run (or the original's) from its logs, as the original's plotting notebook.

    python reports/plot_progress.py log/carracing.cma.16.64                        # -> log/carracing.cma.16.64.png
    python reports/plot_progress.py ../shared/tf_models/log/carracing.cma.16.64 --days --out original.png
    python reports/plot_progress.py log/carracing.cma.4.16 ../shared/tf_models/log/carracing.cma.16.64 --compare \
        --cores 2 64 --labels "small preset" "original" --out curves.png

Reads `<base>.hist.json` (one row per generation: gen, seconds, mean, min, max, std, rms_stdev,
mean_steps, max_steps) and, when present, `<base>.hist_best.json` (the evaluations of the mean).
Top: the population's mean, min and max reward and the evaluations; bottom: CMA's rms sigma.
The x axis is the generation, or wall-clock days with --days (the notebook's axis). With
--compare: several runs' evaluations by generation and by CPU-hour, and their rms sigma.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script: the root

from files import atomic, train_logs
from files.media import png_bytes
from plumbing.cli import UserError, run


def plot(base, out, days=False):
    """Write the PNG of the logs at `base` to `out`; x axis in generations, or wall-clock days."""
    hist = train_logs.read_rows(base, ".hist.json")
    evals = train_logs.read_rows(base, ".hist_best.json", required=False)
    if not hist:
        raise UserError(f"{base}.hist.json: no generation logged yet")
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    x = (lambda row: row[1] / 86400.0) if days else (lambda row: row[0])
    gens = [x(r) for r in hist]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, gridspec_kw=dict(height_ratios=(3, 1)))
    top.fill_between(gens, [r[3] for r in hist], [r[4] for r in hist], color="tab:blue", alpha=0.2,
                     label="population min..max (training episodes)")
    top.plot(gens, [r[2] for r in hist], color="tab:blue", lw=1, label="population mean")
    if evals:
        top.plot([x(r) for r in evals], [r[5] for r in evals], "o-", color="tab:red", ms=3, lw=1,
                 label=f"evaluation of the mean (best {max(r[5] for r in evals):.2f})")
    if max(r[4] for r in hist) > 450:  # the "solved" line only where it does not flatten the curves
        top.axhline(900, color="gray", ls=":", lw=1, label="900: solved")
    top.set_ylabel("reward per episode")
    top.set_title(f"{os.path.basename(base)}: {len(hist)} generations, {hist[-1][1] / 86400.0:.2f} days")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # outside: it hides no data
    top.grid(alpha=0.3)
    bottom.plot(gens, [r[6] for r in hist], color="tab:green", lw=1)
    bottom.set_ylabel("rms of CMA's\nper-parameter std")
    bottom.set_xlabel("wall-clock days" if days else "generation")
    if not days:
        bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.grid(alpha=0.3)
    atomic.write_bytes(out, png_bytes(fig))


def compare(runs, out):
    """The evaluation of the mean of several runs by generation and by CPU-hour (seconds x cores),
    and CMA's step size by generation (how the search moved). `runs`: [(base, label, cores)]."""
    plt = _pyplot()
    fig, (by_gen, by_cpu, step) = plt.subplots(1, 3, figsize=(17, 4.5), gridspec_kw=dict(width_ratios=(4, 4, 3)))
    for base, label, cores in runs:
        evals, hist = train_logs.read_rows(base, ".hist_best.json"), train_logs.read_rows(base, ".hist.json")
        by_gen.plot([r[0] for r in evals], [r[5] for r in evals], "o-", ms=2, lw=1, label=label)
        by_cpu.plot([r[1] * cores / 3600.0 for r in evals], [r[5] for r in evals], "o-", ms=2, lw=1, label=label)
        step.plot([r[0] for r in hist], [r[6] for r in hist], lw=1, label=label)
    by_gen.set(xscale="log", xlabel="generation (log scale)", ylabel="evaluation of the CMA mean (mean reward)")
    by_cpu.set(xscale="log", xlabel="CPU-hours: wall-clock hours x cores (log scale)")
    by_cpu.sharey(by_gen)
    for ax in (by_gen, by_cpu):
        ax.axhline(900, color="gray", ls=":", lw=1)
    step.set(xscale="log", xlabel="generation (log scale)", ylabel="rms of CMA's per-parameter std")
    for ax in (by_gen, by_cpu, step):
        ax.grid(alpha=0.3, which="both")
    by_cpu.legend(loc="lower right", fontsize=8)
    atomic.write_bytes(out, png_bytes(fig))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("base", nargs="+", help="log base: the path of the logs without .hist.json, e.g. "
                                           "log/carracing.cma.16.64 (several with --compare)")
    p.add_argument("--days", action="store_true", help="x axis in wall-clock days instead of generations")
    p.add_argument("--compare", action="store_true", help="the evaluations of several runs by generation and by "
                                                          "CPU-hour, and their step sizes, one PNG")
    p.add_argument("--cores", nargs="+", type=int, help="with --compare: the cores each run used (its CPU-hours)")
    p.add_argument("--labels", nargs="+", help="with --compare: a legend label per run")
    p.add_argument("--out", help="PNG to write (default: <first base>.png)")
    args = p.parse_args()
    out = args.out or args.base[0] + ".png"
    if args.compare:
        cores, labels = args.cores or [1] * len(args.base), args.labels or args.base
        if not len(cores) == len(labels) == len(args.base):
            raise UserError("--compare: give as many --cores and --labels as log bases")
        compare(list(zip(args.base, labels, cores)), out)
    elif len(args.base) > 1:
        raise UserError("several log bases need --compare")
    else:
        plot(args.base[0], out, args.days)
    print("wrote", out)


if __name__ == "__main__":
    run(main)
