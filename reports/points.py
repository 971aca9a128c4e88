"""Where an agent's points go: `model.py norender`'s episodes, each score split into what CarRacing pays.

    python reports/points.py log/carracing.cma.4.16.best.json 0 --config small   # the shipped agent

CarRacing pays 1000/N for each of a track's N tiles the first time a wheel touches it, takes 0.1
per frame, and 100 for leaving the playfield, so an episode of T frames that touches V tiles
scores 1000 V / N - 0.1 T (- 100), and the 1000 - score it lost splits exactly into:

- time: 0.1 T (the lap ends only when every tile is touched, so a car that misses one pays all
  1000 frames);
- tiles skipped: untouched tiles the car got past (corners cut, or driven beside on the grass);
- tiles not reached: untouched tiles beyond the furthest point of the track the car got to
  (too slow, or time lost off the road);
- leaving the playfield.

How far the car got is its position's nearest track point, followed frame by frame around the
loop. The episodes are model.py's (same seed, tracks and rewards: its one-env path); per episode
also the frames with no wheel on a tile, the mean speed, and the track's sharpest turn (the
largest change of direction over 10 tiles). Writes --out (JSON) and prints the means.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script: the root

import numpy as np

import config
from config import EnvConfig, EvalConfig, ModelConfig
from files import atomic
from model import seeded_agent, simulate
from plumbing.cli import checked_seed, run
from plumbing.torch_setup import set_torch_for_acting

TURN_TILES = 10  # the window of the sharpest turn


class Progress:
    """How far along the track the car got: its nearest track point, unwrapped around the loop."""

    def __init__(self, track):
        self.xy = np.array([(x, y) for _, _, x, y in track])
        self.n, self.at, self.ahead, self.furthest = len(track), 0, 0, 0

    def update(self, position):
        nearest = int(np.argmin(((self.xy - position) ** 2).sum(axis=1)))
        step = (nearest - self.at) % self.n
        self.ahead += step - self.n if step > self.n // 2 else step
        self.at, self.furthest = nearest, max(self.furthest, min(self.ahead, self.n - 1))


def sharpest_turn(track):
    beta = np.unwrap([b for _, b, _, _ in track])
    return float(np.degrees(np.abs(beta[TURN_TILES:] - beta[:-TURN_TILES]).max()))


def episode(model):
    """One episode of simulate on model.env, and its score's parts."""
    env, counts = model.env, {"off_road": 0, "speed": 0.0}
    progress = []

    def on_step(job, ep, t, obs, action):
        if t == 0:
            progress.append(Progress(env.track))
        progress[-1].update(np.array(env.car.hull.position))
        counts["off_road"] += all(not wheel.tiles for wheel in env.car.wheels)
        counts["speed"] += float(np.hypot(*env.car.hull.linearVelocity))
        return action

    (score,), (last,) = simulate(model, train_mode=False, render_mode=False, num_episode=1, on_step=on_step)
    n, frames, furthest = len(env.track), last + 1, progress[-1].furthest
    touched = np.array([tile.road_visited for tile in env.road])
    left = 1000.0 * touched.sum() / n - 0.1 * frames - score > 50.0  # the -100 of leaving the playfield
    return {"score": score, "frames": frames, "tiles": n, "touched": int(touched.sum()), "furthest": furthest,
            "lost_time": 0.1 * frames, "lost_skipped": 1000.0 * (~touched[:furthest + 1]).sum() / n,
            "lost_not_reached": 1000.0 * (~touched[furthest + 1:]).sum() / n, "lost_playfield": 100.0 * left,
            "off_road_frames": counts["off_road"], "mean_speed": counts["speed"] / frames,
            "sharpest_turn": sharpest_turn(env.track)}


def summary(rows):
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    scores, turns = np.array([r["score"] for r in rows]), np.array([r["sharpest_turn"] for r in rows])
    return dict(mean, episodes=len(rows), laps_finished=sum(r["touched"] == r["tiles"] for r in rows),
                median_off_road_frames=float(np.median([r["off_road_frames"] for r in rows])),
                corr_score_sharpest_turn=float(np.corrcoef(scores, turns)[0, 1]) if len(rows) > 2 else None)


def main():
    p = config.parser(ModelConfig, EvalConfig, EnvConfig, description=__doc__.split("\n\n")[0])
    p.add_argument("params", help="the agent's controller JSON (best.json or a generation's .json)")
    p.add_argument("seed", type=int, help="seed of the episodes, as model.py norender's")
    p.add_argument("--out", default="points.json", help="the JSON written (default: points.json)")
    args = p.parse_args()
    cfg, eval_cfg, env_cfg = config.from_args(args, ModelConfig, EvalConfig, EnvConfig)
    seed = checked_seed(args.seed)
    atomic.check_writable(os.path.dirname(args.out) or ".")
    set_torch_for_acting(1)
    model = seeded_agent(args.params, seed, cfg, env_cfg)
    model.make_env(seed=seed)
    rows = [episode(model) for _ in range(eval_cfg.num_episode)]
    s = summary(rows)
    atomic.save_json(args.out, {"params": args.params, "seed": seed, "summary": s, "episodes": rows}, indent=1)
    print(f"{s['episodes']} episodes, mean score {s['score']:.2f} = 1000 - {1000 - s['score']:.2f} lost:")
    for key, what in (("lost_time", "time (0.1 a frame)"), ("lost_skipped", "tiles skipped (got past, not touched)"),
                      ("lost_not_reached", "tiles not reached"), ("lost_playfield", "leaving the playfield")):
        print(f"  {what:40s} {s[key]:7.2f}")
    r = s["corr_score_sharpest_turn"]
    print(f"laps finished {s['laps_finished']}; frames with no wheel on the road: mean {s['off_road_frames']:.1f}, "
          f"median {s['median_off_road_frames']:.1f}; mean speed {s['mean_speed']:.1f}; score against the track's "
          f"sharpest turn: r = {'-' if r is None else f'{r:.2f}'}; wrote {args.out}")


if __name__ == "__main__":
    run(main)
