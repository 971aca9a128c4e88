"""Two agents' scores on the same tracks, episode by episode: each mean and std, and their paired
difference with its standard error, from what `model.py norender` printed.

    python model.py norender a.best.json 500000 > a0.txt     # and 500001 > a1.txt
    python model.py norender b.best.json 500000 > b0.txt     # the same seeds, in the same order
    python reports/paired.py --a a0.txt a1.txt --b b0.txt b1.txt

Episode i of seed s is the same track for every agent (the env's tracks are drawn from the seed),
so the difference of two agents on it leaves the track's part of the score out; its standard
error is the std of the differences over sqrt(n). Each file must be one whole `norender` output:
its rewards, one a line, then the line `seed S average_reward M stdev D`, whose mean they must
give (a cut-off file is refused).
"""
import argparse
import math
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script: the root

from plumbing.cli import UserError, run

SEED_LINE = re.compile(r"^seed (\d+) average_reward (\S+) stdev (\S+)$")
MAX_BYTES = 1 << 24  # 16 MiB: a million episodes' rewards


def read(path):
    """(seed, rewards) of one `model.py norender` output, or a one-line UserError naming `path`."""
    try:
        if os.path.getsize(path) > MAX_BYTES:
            raise UserError(f"{path}: more than {MAX_BYTES} bytes, not a model.py norender output")
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
    rewards, seed = [], None
    for line in lines:
        match = SEED_LINE.match(line)
        if match:
            seed, mean = int(match.group(1)), float(match.group(2))
            break
        try:
            rewards.append(float(line))
        except ValueError:  # the lines model.py prints before the rewards (filename, model size)
            continue
    if seed is None:
        raise UserError(f"{path}: no 'seed S average_reward M stdev D' line (not a whole model.py norender output)")
    if not rewards or not all(math.isfinite(r) for r in rewards) or not math.isclose(np.mean(rewards), mean,
                                                                                      rel_tol=1e-9, abs_tol=1e-6):
        raise UserError(f"{path}: its {len(rewards)} rewards do not average to the {mean} it reports")
    return seed, np.array(rewards)


def paired(a_paths, b_paths):
    """(a's rewards, b's rewards), episode i of a's file k against episode i of b's file k."""
    if len(a_paths) != len(b_paths):
        raise UserError(f"--a has {len(a_paths)} files and --b {len(b_paths)}: give one per seed to each")
    a, b = [], []
    for pa, pb in zip(a_paths, b_paths):
        (sa, ra), (sb, rb) = read(pa), read(pb)
        if sa != sb or len(ra) != len(rb):
            raise UserError(f"{pa} and {pb}: seed {sa} with {len(ra)} episodes against seed {sb} with {len(rb)}: "
                            "not the same tracks")
        a.append(ra)
        b.append(rb)
    return np.concatenate(a), np.concatenate(b)


def summary(a, b):
    """The line this script prints: each agent's mean and (population) std, a - b and its standard error."""
    d = a - b
    se = d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
    return (f"a {a.mean():.1f} ± {a.std():.1f}  b {b.mean():.1f} ± {b.std():.1f}  "
            f"a - b {d.mean():+.1f} ± {se:.1f} (n={len(d)} paired episodes)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", nargs="+", required=True, help="agent a's model.py norender outputs, one per seed")
    p.add_argument("--b", nargs="+", required=True, help="agent b's, for the same seeds in the same order")
    args = p.parse_args()
    print(summary(*paired(args.a, args.b)))


if __name__ == "__main__":
    run(main)
