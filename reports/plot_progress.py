"""Plot a train.py run (or the original's) from its logs, as the original's plotting notebook.

    python reports/plot_progress.py log/carracing.cma.16.64                        # -> log/carracing.cma.16.64.png
    python reports/plot_progress.py ../shared/tf_models/log/carracing.cma.16.64 --days --out original.png
    python reports/plot_progress.py log/carracing.cma.4.16 ../shared/tf_models/log/carracing.cma.16.64 --compare \
        --cores 2 64 --labels "small preset" "original" --out curves.png

Reads `<base>.hist.json` (one row per generation: gen, seconds, mean, min, max, std, rms_stdev,
mean_steps, max_steps) and, when present, `<base>.hist_best.json` (the evaluations of the mean).
Top: the population's mean, min and max reward and the evaluations; bottom: CMA's rms sigma.
The x axis is the generation, or wall-clock days with --days (the notebook's axis). With
--compare: several runs' evaluations by training episodes and by CPU-hour, and their rms sigma;
`--after J:G` draws a run that started from another's mean (a restart) where that one left off.
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
    """The evaluation of the mean of several runs by training episodes and by CPU-hour (seconds x
    cores), and CMA's step size by episodes (how the search moved). `runs`: [(base, label, cores,
    after)], `after` None or (j, g): the run started from run j's mean after its generation g (0-based
    j, an earlier run), so its axes go on from there."""
    plt = _pyplot()
    fig, (by_eps, by_cpu, step) = plt.subplots(1, 3, figsize=(17, 4.5), gridspec_kw=dict(width_ratios=(4, 4, 3)))
    logs = [(train_logs.read_rows(base, ".hist_best.json"), train_logs.read_rows(base, ".hist.json")) for base, *_ in runs]
    for (base, label, cores, _), (evals, hist), (eps0, cpu0) in zip(runs, logs, starts(runs, logs)):
        per_gen = episodes_per_generation(base)
        by_eps.plot([eps0 + r[0] * per_gen for r in evals], [r[5] for r in evals], "o-", ms=2, lw=1, label=label)
        by_cpu.plot([cpu0 + r[1] * cores / 3600.0 for r in evals], [r[5] for r in evals], "o-", ms=2, lw=1, label=label)
        step.plot([eps0 + r[0] * per_gen for r in hist], [r[6] for r in hist], lw=1, label=label)
    by_eps.set(xscale="log", xlabel="training episodes (log scale)", ylabel="evaluation of the CMA mean (mean reward)")
    by_cpu.set(xscale="log", xlabel="CPU-hours: wall-clock hours x cores (log scale)")
    by_cpu.sharey(by_eps)
    for ax in (by_eps, by_cpu):
        ax.axhline(900, color="gray", ls=":", lw=1)
    step.set(xscale="log", xlabel="training episodes (log scale)", ylabel="rms of CMA's per-parameter std")
    for ax in (by_eps, by_cpu, step):
        ax.grid(alpha=0.3, which="both")
    by_cpu.legend(loc="lower right", fontsize=8)
    atomic.write_bytes(out, png_bytes(fig))


def episodes_per_generation(base):
    """num_episode x population, read from the log base's name `<env>.<optimizer>.<num_episode>.<population>`."""
    parts = os.path.basename(base).split(".")
    if len(parts) < 4 or not (parts[-2].isdigit() and parts[-1].isdigit()):
        raise UserError(f"{base}: not a log base named <env>.<optimizer>.<num_episode>.<population>")
    return int(parts[-2]) * int(parts[-1])


def starts(runs, logs):
    """(training episodes, CPU-hours) before each run's generation 0: zero, or for a run started
    from run j's mean after generation g, run j's own start plus its episodes and CPU-hours to g."""
    out = []
    for base, _, _, after in runs:
        if after is None:
            out.append((0, 0.0))
            continue
        j, g = after
        parent, (_, parent_hist), (eps0, cpu0) = runs[j], logs[j], out[j]
        row = next((r for r in parent_hist if r[0] == g), None)
        if row is None:
            raise UserError(f"{base}: --after {j + 1}:{g}, but {parent[0]}.hist.json has no generation {g}")
        out.append((eps0 + g * episodes_per_generation(parent[0]), cpu0 + row[1] * parent[2] / 3600.0))
    return out


def _after(text, index):
    """--after's value for run `index` (0-based): "-" or "J:G", run J (1-based, an earlier run) after generation G."""
    if text == "-":
        return None
    j, _, g = text.partition(":")
    if not (j.isdigit() and g.isdigit() and 1 <= int(j) <= index):
        raise UserError(f"--after {text}: give - or J:G, J an earlier run's place (1..{index}) and G its generation")
    return int(j) - 1, int(g)


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
    p.add_argument("--compare", action="store_true", help="the evaluations of several runs by training episodes and by "
                                                          "CPU-hour, and their step sizes, one PNG")
    p.add_argument("--cores", nargs="+", type=int, help="with --compare: the cores each run used (its CPU-hours)")
    p.add_argument("--labels", nargs="+", help="with --compare: a legend label per run")
    p.add_argument("--after", nargs="+", help="with --compare, a value per run: - (started afresh) or J:G (started "
                                              "from run J's mean after its generation G, J counted from 1): its "
                                              "episodes and CPU-hours go on from there")
    p.add_argument("--out", help="PNG to write (default: <first base>.png)")
    args = p.parse_args()
    out = args.out or args.base[0] + ".png"
    if args.compare:
        cores, labels = args.cores or [1] * len(args.base), args.labels or args.base
        after = [_after(a, i) for i, a in enumerate(args.after or ["-"] * len(args.base))]
        if not len(cores) == len(labels) == len(after) == len(args.base):
            raise UserError("--compare: give as many --cores, --labels and --after as log bases")
        compare(list(zip(args.base, labels, cores, after)), out)
    elif len(args.base) > 1:
        raise UserError("several log bases need --compare")
    elif args.cores or args.labels or args.after:
        raise UserError(f"--{'cores' if args.cores else 'labels' if args.labels else 'after'}: needs --compare")
    else:
        plot(args.base[0], out, args.days)
    print("wrote", out)


if __name__ == "__main__":
    run(main)
