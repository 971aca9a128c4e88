"""Controllers trained inside M's dream: `simulate_dreams`, the dream's `simulate_batch`.

train.py --env_name carracing_dream runs every training episode of a packet here, all at once:
the packet's solutions x num_episode dreams are the K rows of one dream_env.CarRacingDreamBatch.
Each step every running dream's controller acts on [z, h] (or its exp_mode's features) of its
own z and M state, as the agent does in the real env, then M advances once with (z, action)
and samples the next z (the dream env is M: the agent's own M step is that step). A dream
ends when M's done head fires, at the frame cap, or at the step cap; it then leaves the batch
(train.py's --no_reward_steps applies to real episodes only).
Episode e of solution i dreams from np.random.RandomState((seeds[i], e)), so antithetic pairs
(the same seed) meet the same dream noise, and a packet's results do not depend on its size
beyond float rounding.
"""
import numpy as np

from agent import controller
from agent.rollout import step_cap
from rnn.rnn import rnn_output


def simulate_dreams(model, dream, solutions, seeds, num_episode=1, train_mode=True, max_len=-1):
    """[(reward_list, t_list)] per solution (flat parameter arrays), as `simulate_batch`: each of
    `num_episode` dreams of `dream` (a CarRacingDreamBatch over model's M) driven by the solution's
    controller; t is the last 0-based step index."""
    jobs = [(i, e) for i in range(len(solutions)) for e in range(num_episode)]
    layers = [model.controller_layers(p) for p in solutions]
    batch = controller.stack([layers[i] for i, _ in jobs])
    z = dream.reset([(int(seeds[i]), e) for i, e in jobs])
    cap = step_cap(model, train_mode, max_len)
    running, totals, results = list(range(len(jobs))), np.zeros(len(jobs)), {}
    for t in range(cap):
        features = rnn_output(dream.state, z, model.exp_mode)
        z, reward, done = dream.step(controller.act(features, batch))
        totals[running] += reward
        ending = done | (t == cap - 1)
        for k in np.flatnonzero(ending):
            results[jobs[running[k]]] = (totals[running[k]], t)
        if ending.any():
            keep = np.flatnonzero(~ending)
            running = [running[k] for k in keep]
            batch = [(w[keep], b[keep]) for w, b in batch]
            dream.keep(keep)
            z = dream.z
        if not running:
            break
    return [tuple(map(list, zip(*(results[i, e] for e in range(num_episode))))) for i in range(len(solutions))]
