"""The original's evolution strategies: CMAES (wrapping pycma), SimpleGA, OpenES and PEPG.

Every class has the original's constructor arguments, in its order and with its defaults
(arguments of ours come after them), its attribute names and the same small API, which train.py
uses for all of them:

    solutions = es.ask()          # (popsize, num_params) candidates
    es.tell(rewards)              # their fitnesses; every optimizer here MAXIMIZES reward
    es.current_param()            # what train.py saves and evaluates (CMA: the mean)
    es.best_param(), es.result(), es.rms_stdev(), es.set_mu(mu)

As in the original, SimpleGA's `best_param` is the best solution's array (its attribute hides
the method), and OpenES and PEPG spell their flag `first_interation`. The gradient optimizers
(Optimizer, BasicSGD, SGD, Adam) move `pi.mu` and return the step's norm over mu's norm.

All randomness comes from the global `np.random` (as in the original), so a run is repeatable
from `np.random.seed(...)` alone: train.py seeds it once after building the optimizer.

Kept on purpose (faithful): the weight decay term `-wd * mean(theta**2)` is ADDED to the
reward, except in CMAES where it is added to the cost pycma minimizes, i.e. with the wrong
sign (large weights are rewarded; about 0.005 against rewards near 900). Adam uses beta1 = 0.99.
"""
import warnings

import numpy as np


def compute_ranks(x):
    """Ranks of the entries of 1-D `x` in [0, len(x)) (ties broken by argsort order)."""
    ranks = np.empty(len(x), dtype=int)
    ranks[np.argsort(x)] = np.arange(len(x))
    return ranks


def compute_centered_ranks(x):
    """Ranks scaled to [-0.5, 0.5], in float32 like the original."""
    y = compute_ranks(x.ravel()).reshape(x.shape).astype(np.float32)
    y /= x.size - 1
    y -= 0.5
    return y


def compute_weight_decay(weight_decay, solutions):
    """`-weight_decay * mean(theta**2)` per solution (a non-positive number)."""
    solutions = np.asarray(solutions)
    return -weight_decay * np.mean(solutions * solutions, axis=1)


class Optimizer:
    """A gradient step on `pi.mu` (OpenAI's es_distributed optimizers, as the original took them):
    `update(globalg)` moves `pi.mu` by `_compute_step(globalg)` (callers pass the negated
    gradient) and returns |step| / (|mu| + epsilon)."""

    def __init__(self, pi, epsilon=1e-08):
        self.pi = pi
        self.dim = pi.num_params
        self.epsilon = epsilon
        self.t = 0

    def update(self, globalg):
        self.t += 1
        step = self._compute_step(globalg)
        theta = self.pi.mu
        ratio = np.linalg.norm(step) / (np.linalg.norm(theta) + self.epsilon)
        self.pi.mu = theta + step
        return ratio

    def _compute_step(self, globalg):
        raise NotImplementedError


class BasicSGD(Optimizer):
    """step = -stepsize * g."""

    def __init__(self, pi, stepsize):
        Optimizer.__init__(self, pi)
        self.stepsize = stepsize

    def _compute_step(self, globalg):
        return -self.stepsize * globalg


class SGD(Optimizer):
    """Momentum: v = momentum * v + (1 - momentum) * g, step = -stepsize * v."""

    def __init__(self, pi, stepsize, momentum=0.9):
        Optimizer.__init__(self, pi)
        self.v = np.zeros(self.dim, dtype=np.float32)
        self.stepsize, self.momentum = stepsize, momentum

    def _compute_step(self, globalg):
        self.v = self.momentum * self.v + (1.0 - self.momentum) * globalg
        return -self.stepsize * self.v


class Adam(Optimizer):
    """Adam with the original's beta1 = 0.99 (beta2 = 0.999, epsilon = 1e-8)."""

    def __init__(self, pi, stepsize, beta1=0.99, beta2=0.999):
        Optimizer.__init__(self, pi)
        self.stepsize = stepsize
        self.beta1 = beta1
        self.beta2 = beta2
        # float32 zeros as the original's; the first update makes them float64 (g is float64)
        self.m = np.zeros(self.dim, dtype=np.float32)
        self.v = np.zeros(self.dim, dtype=np.float32)

    def _compute_step(self, globalg):
        a = self.stepsize * np.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
        self.m = self.beta1 * self.m + (1 - self.beta1) * globalg
        self.v = self.beta2 * self.v + (1 - self.beta2) * (globalg * globalg)
        return -a * self.m / (np.sqrt(self.v) + self.epsilon)


class CMAES:
    """CMA-ES through pycma: x0 = 0 (or `x0`), sigma0 = sigma_init, popsize; every other pycma
    option at its default except the step-size rule, which is 2.2's (CSA) unless `sigma_adaptation`
    says tpa. pycma minimizes, so it is told `-reward + weight_decay_term`.

    With the pinned pycma 4.5 (the original used 2.2): `result` is a named tuple whose
    indices 0 (xbest), 1 (fbest), 5 (xfavorite = the mean) and 6 (stds) are the ones used, as
    in 2.2; pycma's one-line header is not printed; popsize < 6 turns on pycma's mirrored
    sampling.
    """

    def __init__(self, num_params, sigma_init=0.10, popsize=255, weight_decay=0.01, x0=None, sigma_adaptation="csa"):
        import cma
        from cma.sigma_adaptation import CMAAdaptSigmaCSA, CMAAdaptSigmaTPA

        self.num_params = num_params
        self.sigma_init = sigma_init
        self.popsize = popsize
        self.weight_decay = weight_decay
        self.solutions = None
        # verb_disp 0: no header line, whose time-based seed= suggests an unseeded run (train.py
        # seeds np.random, which pycma samples from, right after this and prints that seed)
        x0 = num_params * [0] if x0 is None else list(x0)
        # pycma 2.2 adapted the step size by CSA whatever the dimension; pycma 3+ switches to TPA
        # from 300 parameters on (867 here), whose step size grows where CSA's shrinks
        rule = {"csa": CMAAdaptSigmaCSA, "tpa": CMAAdaptSigmaTPA}[sigma_adaptation]
        self.es = cma.CMAEvolutionStrategy(x0, sigma_init, {"popsize": popsize, "verb_disp": 0, "AdaptSigma": rule})

    def rms_stdev(self):
        return np.mean(np.abs(self.es.result[6]))

    def ask(self):
        with warnings.catch_warnings():  # pycma 4.5's note on its mirrored samples when popsize < 6
            warnings.filterwarnings("ignore", message=".*special injected samples", category=UserWarning)
            self.solutions = np.array(self.es.ask())
        return self.solutions

    def tell(self, rewards):
        cost = -np.array(rewards, dtype=np.float64)
        if self.weight_decay > 0:
            cost += compute_weight_decay(self.weight_decay, self.solutions)  # the original's sign
        self.es.tell(self.solutions, cost.tolist())

    def current_param(self):
        return self.es.result[5]

    def set_mu(self, mu):
        """A no-op, as in the original (so `--retrain` does nothing with CMA)."""

    def best_param(self):
        return self.es.result[0]

    def result(self):
        r = self.es.result
        return (r[0], -r[1], -r[1], r[6])


class SimpleGA:
    """Uniform crossover of two random elites plus N(0, sigma^2) noise; keeps the top
    `int(popsize * elite_ratio)` solutions. As in the original, the previous elites compete
    with the new children only when `forget_best` is True (the flag acts inverted)."""

    def __init__(self, num_params, sigma_init=0.1, sigma_decay=0.999, sigma_limit=0.01, popsize=256,
                 elite_ratio=0.1, forget_best=False, weight_decay=0.01):
        self.num_params = num_params
        self.sigma_init, self.sigma_decay, self.sigma_limit = sigma_init, sigma_decay, sigma_limit
        self.popsize = popsize
        self.elite_ratio = elite_ratio
        self.elite_popsize = int(popsize * elite_ratio)
        if self.elite_popsize < 1:
            raise ValueError(f"SimpleGA: popsize {popsize} * elite_ratio {elite_ratio} leaves no elite")
        self.sigma = sigma_init
        self.elite_params = np.zeros((self.elite_popsize, num_params))
        self.elite_rewards = np.zeros(self.elite_popsize)
        self.best_param = np.zeros(num_params)  # the original's attribute (it hides the method of that name)
        self.best_reward = 0
        self.curr_best_reward = 0
        self.first_iteration = True
        self.forget_best = forget_best
        self.weight_decay = weight_decay

    def rms_stdev(self):
        return self.sigma

    def ask(self):
        self.epsilon = np.random.randn(self.popsize, self.num_params) * self.sigma
        children = []
        for i in range(self.popsize):
            a = self.elite_params[np.random.choice(self.elite_popsize)]
            b = self.elite_params[np.random.choice(self.elite_popsize)]
            child = np.copy(a)
            take_b = np.where(np.random.rand(child.size) > 0.5)
            child[take_b] = b[take_b]
            children.append(child + self.epsilon[i])
        self.solutions = np.array(children)
        return self.solutions

    def tell(self, rewards):
        if len(rewards) != self.popsize:
            raise ValueError("Inconsistent reward_table size reported.")
        reward = np.array(rewards, dtype=np.float64)
        if self.weight_decay > 0:
            reward += compute_weight_decay(self.weight_decay, self.solutions)
        solutions = self.solutions
        if self.forget_best and not self.first_iteration:
            reward = np.concatenate([reward, self.elite_rewards])
            solutions = np.concatenate([solutions, self.elite_params])
        idx = np.argsort(reward)[::-1][:self.elite_popsize]
        self.elite_rewards = reward[idx]
        self.elite_params = solutions[idx]
        self.curr_best_reward = self.elite_rewards[0]
        if self.first_iteration or self.curr_best_reward > self.best_reward:
            self.first_iteration = False
            self.best_reward = self.elite_rewards[0]
            self.best_param = np.copy(self.elite_params[0])
        if self.sigma > self.sigma_limit:
            self.sigma *= self.sigma_decay

    def current_param(self):
        return self.elite_params[0]

    def set_mu(self, mu):
        """A no-op, as in the original."""

    def result(self):
        return (self.best_param, self.best_reward, self.curr_best_reward, self.sigma)


class _MeanSearch:
    """What OpenES and PEPG share: a searched mean `mu` moved by Adam, the best mean seen, and
    the fitness shaping (centered ranks, then the weight decay term)."""

    def _start_search(self, learning_rate, weight_decay, rank_fitness, forget_best):
        self.mu = np.zeros(self.num_params)
        self.best_mu = np.zeros(self.num_params)
        self.curr_best_mu = np.zeros(self.num_params)
        self.best_reward = 0
        self.curr_best_reward = 0
        self.first_interation = True  # sic: the original's spelling
        self.weight_decay = weight_decay
        self.rank_fitness = rank_fitness
        self.forget_best = forget_best or rank_fitness  # ranks are not comparable across generations
        self.optimizer = Adam(self, learning_rate)

    def _fitness(self, rewards):
        if len(rewards) != self.popsize:
            raise ValueError("Inconsistent reward_table size reported.")
        table = np.array(rewards, dtype=np.float64)
        if self.rank_fitness:
            table = compute_centered_ranks(table)
        if self.weight_decay > 0:
            table += compute_weight_decay(self.weight_decay, self.solutions)  # in place: stays float32 after ranks
        return table

    def current_param(self):
        return self.curr_best_mu

    def set_mu(self, mu):
        self.mu = np.array(mu)

    def best_param(self):
        return self.best_mu

    def result(self):
        return (self.best_mu, self.best_reward, self.curr_best_reward, self.sigma)


class OpenES(_MeanSearch):
    """OpenAI-ES: gradient `eps.T @ standardized(reward) / (popsize * sigma)` applied with Adam;
    centered-rank fitness and optional mirrored (antithetic) noise."""

    def __init__(self, num_params, sigma_init=0.1, sigma_decay=0.999, sigma_limit=0.01, learning_rate=0.01,
                 learning_rate_decay=0.9999, learning_rate_limit=0.001, popsize=256, antithetic=False,
                 weight_decay=0.01, rank_fitness=True, forget_best=True):
        self.num_params = num_params
        self.sigma_init, self.sigma_decay, self.sigma_limit = sigma_init, sigma_decay, sigma_limit
        self.sigma = sigma_init
        self.learning_rate = learning_rate
        self.learning_rate_decay, self.learning_rate_limit = learning_rate_decay, learning_rate_limit
        self.popsize = popsize
        self.antithetic = antithetic
        if antithetic and popsize % 2:
            raise ValueError("OpenES: antithetic sampling needs an even population size")
        if antithetic:
            self.half_popsize = popsize // 2
        self.reward = np.zeros(popsize)  # the original's (never read)
        self._start_search(learning_rate, weight_decay, rank_fitness, forget_best)

    def rms_stdev(self):
        return self.sigma

    def ask(self):
        if self.antithetic:
            self.epsilon_half = np.random.randn(self.half_popsize, self.num_params)
            self.epsilon = np.concatenate([self.epsilon_half, -self.epsilon_half])
        else:
            self.epsilon = np.random.randn(self.popsize, self.num_params)
        self.solutions = self.mu.reshape(1, -1) + self.epsilon * self.sigma
        return self.solutions

    def tell(self, rewards):
        reward = self._fitness(rewards)
        best = np.argsort(reward)[::-1][0]
        self.curr_best_reward, self.curr_best_mu = reward[best], self.solutions[best]
        if self.first_interation or self.forget_best or self.curr_best_reward > self.best_reward:
            self.first_interation = False
            self.best_reward, self.best_mu = self.curr_best_reward, self.curr_best_mu
        normalized = (reward - np.mean(reward)) / np.std(reward)
        change_mu = np.dot(self.epsilon.T, normalized) / (self.popsize * self.sigma)
        self.optimizer.stepsize = self.learning_rate
        self.optimizer.update(-change_mu)
        if self.sigma > self.sigma_limit:
            self.sigma *= self.sigma_decay
        if self.learning_rate > self.learning_rate_limit:
            self.learning_rate *= self.learning_rate_decay


class PEPG(_MeanSearch):
    """PEPG with symmetric sampling, a per-parameter sigma adapted from the reward of each pair
    (each change clipped to +-sigma_max_change * sigma), Adam on the mean (or, with
    elite_ratio > 0, a step to the elites' average), centered-rank fitness."""

    def __init__(self, num_params, sigma_init=0.10, sigma_alpha=0.20, sigma_decay=0.999, sigma_limit=0.01,
                 sigma_max_change=0.2, learning_rate=0.01, learning_rate_decay=0.9999, learning_rate_limit=0.01,
                 elite_ratio=0, popsize=256, average_baseline=True, weight_decay=0.01, rank_fitness=True,
                 forget_best=True):
        self.num_params = num_params
        self.sigma_init, self.sigma_alpha, self.sigma_decay = sigma_init, sigma_alpha, sigma_decay
        self.sigma_limit, self.sigma_max_change = sigma_limit, sigma_max_change
        self.learning_rate = learning_rate
        self.learning_rate_decay, self.learning_rate_limit = learning_rate_decay, learning_rate_limit
        self.popsize = popsize
        self.average_baseline = average_baseline
        if average_baseline and popsize % 2:
            raise ValueError("PEPG: popsize must be even with average_baseline")
        if not average_baseline and not popsize % 2:
            raise ValueError("PEPG: popsize must be odd without average_baseline")
        self.batch_size = popsize // 2
        self.batch_reward = np.zeros(self.batch_size * 2)  # the original's (never read)
        self.elite_ratio = elite_ratio
        self.elite_popsize = int(popsize * elite_ratio)
        self.use_elite = self.elite_popsize > 0
        self.sigma = np.ones(num_params) * sigma_init
        self._start_search(learning_rate, weight_decay, rank_fitness, forget_best)

    def rms_stdev(self):
        return np.mean(np.abs(self.sigma))

    def ask(self):
        self.epsilon = np.random.randn(self.batch_size, self.num_params) * self.sigma.reshape(1, -1)
        self.epsilon_full = np.concatenate([self.epsilon, -self.epsilon])
        epsilon = self.epsilon_full
        if not self.average_baseline:  # first solution is the mean itself, the baseline
            epsilon = np.concatenate([np.zeros((1, self.num_params)), epsilon])
        self.solutions = self.mu.reshape(1, -1) + epsilon
        return self.solutions

    def tell(self, rewards):
        table = self._fitness(rewards)
        if self.average_baseline:
            b, reward = np.mean(table), table
        else:
            b, reward = table[0], table[1:]
        idx = np.argsort(reward)[::-1]
        if self.use_elite:
            idx = idx[:self.elite_popsize]
        if reward[idx[0]] > b or self.average_baseline:
            self.curr_best_mu, self.curr_best_reward = self.mu + self.epsilon_full[idx[0]], reward[idx[0]]
        else:
            self.curr_best_mu, self.curr_best_reward = self.mu, b
        if self.first_interation:
            self.sigma = np.ones(self.num_params) * self.sigma_init
            self.first_interation = False
            self.best_reward, self.best_mu = self.curr_best_reward, self.curr_best_mu
        elif self.forget_best or self.curr_best_reward > self.best_reward:
            self.best_reward, self.best_mu = self.curr_best_reward, self.curr_best_mu

        epsilon, sigma = self.epsilon, self.sigma
        if self.use_elite:
            self.mu = self.mu + self.epsilon_full[idx].mean(axis=0)
        else:
            change_mu = np.dot(reward[:self.batch_size] - reward[self.batch_size:], epsilon)
            self.optimizer.stepsize = self.learning_rate
            self.optimizer.update(-change_mu)

        if self.sigma_alpha > 0:
            stdev_reward = 1.0 if self.rank_fitness else reward.std()
            S = (epsilon * epsilon - (sigma * sigma).reshape(1, -1)) / sigma.reshape(1, -1)
            reward_avg = (reward[:self.batch_size] + reward[self.batch_size:]) / 2.0
            delta_sigma = np.dot(reward_avg - b, S) / (2 * self.batch_size * stdev_reward)
            change = np.clip(self.sigma_alpha * delta_sigma,
                             -self.sigma_max_change * self.sigma, self.sigma_max_change * self.sigma)
            self.sigma = self.sigma + change
        if self.sigma_decay < 1:
            self.sigma[self.sigma > self.sigma_limit] *= self.sigma_decay
        if self.learning_rate_decay < 1 and self.learning_rate > self.learning_rate_limit:
            self.learning_rate *= self.learning_rate_decay
