"""reports/points.py: an episode's score split into what CarRacing pays, checked against the env's
own reward and tile counter."""
import json
import math

import numpy as np
import pytest
from conftest import REPO, run_script

from config import EnvConfig, ModelConfig
from model import seeded_agent
from reports import points

SHIPPED_BEST = REPO / "log" / "carracing.cma.4.16.best.json"


def circle(n):
    """A track of n points on a unit circle, in the (alpha, beta, x, y) layout of env.track."""
    a = 2 * math.pi * np.arange(n) / n
    return [(float(t), float(t + math.pi / 2), math.cos(t), math.sin(t)) for t in a]


def at(track, i):
    return np.array(track[i % len(track)][2:])


def test_progress_follows_the_loop_and_ignores_the_tile_behind_the_start():
    track = circle(20)
    p = points.Progress(track)
    p.update(at(track, -1))  # backwards over the start line: not progress
    assert p.furthest == 0
    for i in range(0, 8):
        p.update(at(track, i))
    assert p.furthest == 7
    p.update(at(track, 12))  # a jump (a corner cut) counts as getting there
    p.update(at(track, 10))  # back again: the furthest point stays
    assert p.furthest == 12
    for i in range(13, 45):  # once round and more: clipped at the last tile
        p.update(at(track, i))
    assert p.furthest == 19


def test_sharpest_turn_is_the_largest_change_of_direction_over_the_window():
    n = 40
    straight_then_hairpin = [(0.0, 0.0 if i < 20 else min(math.pi, (i - 20) * math.pi / 5), float(i), 0.0)
                             for i in range(n)]
    assert points.sharpest_turn(straight_then_hairpin) == pytest.approx(180.0)
    assert points.sharpest_turn(circle(40)) == pytest.approx(360.0 * points.TURN_TILES / 40)


def test_the_parts_add_up_to_the_env_reward_and_its_tile_counter():
    cfg = ModelConfig(max_episode_length=80, vae_path=str(REPO / "vae" / "vae.json"),
                      rnn_path=str(REPO / "rnn" / "rnn.json"))
    model = seeded_agent(str(SHIPPED_BEST), 3, cfg, EnvConfig())
    model.make_env(seed=3)
    row = points.episode(model)
    assert row["frames"] == 80 and row["touched"] == model.env.tile_visited_count > 0
    lost = row["lost_time"] + row["lost_skipped"] + row["lost_not_reached"] + row["lost_playfield"]
    assert lost == pytest.approx(1000.0 - row["score"], abs=1e-6)
    assert row["lost_time"] == pytest.approx(8.0) and row["lost_playfield"] == 0.0
    assert 0 < row["furthest"] < row["tiles"] // 2  # 80 frames: a stretch of the track, not the lap
    n = row["tiles"]
    skipped, not_reached = (round(row[k] * n / 1000.0) for k in ("lost_skipped", "lost_not_reached"))
    assert row["lost_skipped"] == pytest.approx(1000.0 * skipped / n)  # whole tiles
    assert skipped <= row["furthest"] + 1 and not_reached <= n - row["furthest"] - 1
    assert skipped + not_reached == n - row["touched"]


def test_script_writes_its_figures_and_refuses_a_bad_seed(tmp_path):
    out = tmp_path / "points.json"
    proc = run_script("reports/points.py", SHIPPED_BEST, 0, "--num_episode", 2, "--max_episode_length", 30,
                      "--out", out, cwd=REPO)
    figures = json.loads(out.read_text())
    assert [r["frames"] for r in figures["episodes"]] == [30, 30] and figures["summary"]["episodes"] == 2
    assert "lost:" in proc.stdout and "tiles skipped" in proc.stdout
    proc = run_script("reports/points.py", SHIPPED_BEST, -1, "--out", tmp_path / "x.json", cwd=REPO, check=False)
    assert proc.returncode == 2 and "seed -1" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.json").exists()
