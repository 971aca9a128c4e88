"""reports/paired.py: two agents' model.py norender outputs on the same seeds, episode by episode."""
import numpy as np
from conftest import REPO, run_script

SHIPPED_BEST = REPO / "log" / "carracing.cma.4.64.best.json"


def norender_output(path, seed, rewards, name="x.json"):
    """What model.py norender prints: its header lines, a reward a line, then the seed line."""
    lines = [f"filename {name}", f"loading file {name}", "model size 867", *map(str, rewards),
             f"seed {seed} average_reward {np.mean(rewards)} stdev {np.std(rewards)}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_paired_difference_against_numpy(tmp_path):
    rng = np.random.default_rng(0)
    a = [rng.normal(800, 100, 7), rng.normal(800, 100, 5)]
    b = [x - rng.normal(30, 10, len(x)) for x in a]
    files_a = [norender_output(tmp_path / f"a{i}.txt", 500000 + i, r) for i, r in enumerate(a)]
    files_b = [norender_output(tmp_path / f"b{i}.txt", 500000 + i, r) for i, r in enumerate(b)]
    out = run_script("reports/paired.py", "--a", *files_a, "--b", *files_b).stdout.strip()
    ra, rb = np.concatenate(a), np.concatenate(b)
    d = ra - rb
    assert out == (f"a {ra.mean():.1f} ± {ra.std():.1f}  b {rb.mean():.1f} ± {rb.std():.1f}  "
                   f"a - b {d.mean():+.1f} ± {d.std(ddof=1) / np.sqrt(12):.1f} (n=12 paired episodes)")


def test_paired_refuses_other_tracks_and_cut_off_files(tmp_path):
    a = norender_output(tmp_path / "a.txt", 500000, [1.0, 2.0, 3.0])
    cases = [(norender_output(tmp_path / "b.txt", 500001, [1.0, 2.0, 3.0]), "not the same tracks"),
             (norender_output(tmp_path / "c.txt", 500000, [1.0, 2.0]), "not the same tracks")]
    cut = tmp_path / "cut.txt"
    cut.write_text("\n".join(a.read_text().splitlines()[:-1]))  # killed before its seed line
    cases.append((cut, "no 'seed S average_reward M stdev D' line"))
    short = tmp_path / "short.txt"  # a reward line lost: the rest no longer averages to the seed line's mean
    short.write_text(a.read_text().replace("\n3.0\n", "\n"))
    cases.append((short, "do not average to"))
    cases.append((tmp_path / "missing.txt", "missing.txt: cannot read it"))
    for b, says in cases:
        proc = run_script("reports/paired.py", "--a", a, "--b", b, check=False)
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    proc = run_script("reports/paired.py", "--a", a, a, "--b", a, check=False)
    assert proc.returncode == 2 and "--a has 2 files and --b 1" in proc.stderr


def test_paired_reads_what_model_py_prints(tmp_path):
    """model.py norender's own output, twice on the same seed: the same agent, a difference of 0."""
    args = ("norender", SHIPPED_BEST, 500000, "--num_episode", 2, "--max_episode_length", 20)
    out = run_script("model.py", *args, cwd=REPO).stdout
    (tmp_path / "a.txt").write_text(out)
    line = run_script("reports/paired.py", "--a", tmp_path / "a.txt", "--b", tmp_path / "a.txt").stdout
    assert "a - b +0.0 ± 0.0 (n=2 paired episodes)" in line
