"""The README's tables of measured runs, made from the runs' summary.json so they cannot drift.

    python reports/readme.py            # rewrite every table block of README.md and docs/*.md from its summary.json
    python reports/readme.py --check    # exit 2 naming the first block that differs (the tests run this)
    python reports/readme.py --pictures runs/smoke/report docs/smoke   # a run's report as the README shows it

A block is the lines between `<!-- summary: PATH -->` and `<!-- end summary -->`, where PATH
(relative to the page) is a summary.json written by report.py.
"""
import argparse
import glob
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script: the root

from files import atomic, json_data
from plumbing.cli import UserError, run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
PAGES = [README, *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]  # the README and the pages it links
BLOCK = re.compile(r"(<!-- summary: (\S+) -->\n)(.*?)(<!-- end summary -->)", re.S)


def _num(value, digits=1):
    return "—" if value is None else f"{value:,.{digits}f}"


def table(summary):
    """The markdown table of one run's summary.json."""
    s = summary["stages"]
    ex, vae, rnn, tr, ev = s["extract"], s["vae_train"], s["rnn_train"], s["train"], s["evaluate"]
    losses = vae["final_losses"]
    rows = [
        ("extract", f"{ex['episodes']} episodes, {ex['frames']:,} frames", ex.get("seconds"),
         f"{_num(ex['frames_per_second'], 0)} frames/s", "record/"),
        ("vae_train", f"{_num(vae.get('images'), 0)} images", vae.get("seconds"),
         f"{_num(vae.get('images_per_second'), 0)} images/s",
         f"loss {_num(losses.get('loss'))} = r_loss {_num(losses.get('r_loss'))} + kl_loss {_num(losses.get('kl_loss'))}"
         if "loss" in losses else losses.get("missing", "—")),
        ("series", f"{ex['episodes']} episodes", s["series"].get("seconds"),
         f"{_num(s['series']['frames_per_second'], 0)} frames/s", "series.npz"),
        ("rnn_train", f"{_num(rnn.get('sequences'), 0)} sequences", rnn.get("seconds"),
         f"{_num(rnn.get('sequences_per_second'))} sequences/s",
         f"cost {rnn['final_cost']:.3f}" if isinstance(rnn["final_cost"], float) else str(rnn["final_cost"])),
        ("train", f"{tr['generations']} generations, {_num(tr.get('env_steps'), 0)} env steps", tr.get("seconds"),
         f"{_num(tr.get('env_steps_per_second'), 0)} env steps/s", f"best evaluation {_num(tr['best_eval_reward'], 2)}"),
        ("evaluate", f"`model.py norender`, {ev['episodes']} episodes", ev.get("seconds"), "",
         f"{ev['mean']:.2f} ± {ev['std']:.2f}"),
    ]
    lines = ["| stage | work | wall time | work / wall time | result |", "|---|---|---:|---:|---|"]
    lines += [f"| {a} | {b} | {_num(c, 0)} s | {d} | {e} |" for a, b, c, d, e in rows]
    total = sum(v.get("seconds") or 0 for v in s.values())
    lines.append(f"| **all but the report** | | **{total:,.0f} s = {total / 3600:.2f} h** | | |")
    return "\n".join(lines) + "\n"


def rendered(text, folder):
    """`text` with every block replaced by the table of its summary.json."""
    def block(match):
        path = os.path.join(folder, match.group(2))
        summary = json_data.read(path, "the summary of a README table", 1 << 20)
        return match.group(1) + table(summary) + match.group(4)
    return BLOCK.sub(block, text)


def pictures(report_dir, docs_dir):
    """Copy a report's PNGs and summary.json to `docs_dir`, and make each GIF a PNG strip of 4
    of its frames, evenly spaced (the README shows stills; the GIFs stay in the run folder)."""
    import imageio.v3 as iio  # only here: `--check` (the tests, CI) needs neither
    import numpy as np

    os.makedirs(docs_dir, exist_ok=True)
    for path in sorted(glob.glob(os.path.join(report_dir, "*.png")) + [os.path.join(report_dir, "summary.json")]):
        shutil.copyfile(path, os.path.join(docs_dir, os.path.basename(path)))
    for path in sorted(glob.glob(os.path.join(report_dir, "*.gif"))):
        frames = iio.imread(path)[..., :3]
        picks = np.linspace(0, len(frames) - 1, 4).round().astype(int)
        strip = np.concatenate([np.pad(frames[k], ((0, 0), (0, 4), (0, 0))) for k in picks], axis=1)
        iio.imwrite(os.path.join(docs_dir, os.path.basename(path)[:-4] + ".png"), strip)
    print(f"wrote the pictures of {report_dir} to {docs_dir}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only check that the tables match their summary.json")
    p.add_argument("--readme", nargs="+", default=PAGES,
                   help="the pages to update or check (default: README.md and docs/*.md)")
    p.add_argument("--pictures", nargs=2, metavar=("REPORT_DIR", "DOCS_DIR"),
                   help="copy a run's report/ PNGs and summary.json and 4-frame stills of its GIFs to DOCS_DIR")
    args = p.parse_args()
    if args.pictures:
        return pictures(*args.pictures)
    count = sum(check_or_rewrite(page, args.check) for page in args.readme)
    print(f"{count} tables match their summary.json" if args.check else f"rewrote {count} tables")


def check_or_rewrite(page, check):
    """Check (or rewrite) the table blocks of one page; returns how many it has."""
    try:
        with open(page) as f:
            text = f.read()
    except OSError as e:
        raise UserError(f"{page}: cannot read it ({e.strerror})") from None
    new = rendered(text, os.path.dirname(os.path.abspath(page)))
    if check:
        for old_block, new_block in zip(BLOCK.finditer(text), BLOCK.finditer(new)):
            if old_block.group(0) != new_block.group(0):
                raise UserError(f"{page}: the table of {old_block.group(2)} differs from it "
                                "(python reports/readme.py rewrites it)")
    elif new != text:
        atomic.write_bytes(page, new.encode())
    return len(BLOCK.findall(text))

if __name__ == "__main__":
    run(main)
