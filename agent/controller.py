"""C: the controller, a linear map from M's features to an action, as the original's.

Flat parameters are [b (3), W (inputs x 3) row-major]: a = tanh(x W + b). With exp_mode
z_hidden (the paper's "z + hidden layer" agent) they are [b_hidden (hidden), W_hidden
(inputs x hidden), b_out (3), W_out (hidden x 3)]: a = tanh(tanh(x W_hidden + b_hidden) W_out
+ b_out). Either way the env gets (steer, gas, brake) = (a0, (a1 + 1) / 2, clip(a2, 0, 1)).
"""
import numpy as np

NUM_ACTIONS = 3  # steer, gas, brake
ACTION_LOW, ACTION_HIGH = np.array([-1.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0])  # CarRacing's action space


def num_params(num_inputs, hidden=0):
    """Flat parameters of a controller on `num_inputs` features (`hidden` > 0: z_hidden's layer)."""
    if hidden:
        return (num_inputs + 1) * hidden + (hidden + 1) * NUM_ACTIONS
    return (num_inputs + 1) * NUM_ACTIONS


def layers(params, num_inputs, hidden=0):
    """[(weight, bias), ...] of flat `params` (copied), input to output."""
    params = np.array(params, dtype=np.float64)
    if params.shape != (num_params(num_inputs, hidden),):
        raise ValueError(f"expected {num_params(num_inputs, hidden)} controller parameters, got shape {params.shape}")
    if hidden:
        cut = (num_inputs + 1) * hidden
        return [(params[hidden:cut].reshape(num_inputs, hidden), params[:hidden]),
                (params[cut + NUM_ACTIONS:].reshape(hidden, NUM_ACTIONS), params[cut:cut + NUM_ACTIONS])]
    return [(params[NUM_ACTIONS:].reshape(num_inputs, NUM_ACTIONS), params[:NUM_ACTIONS])]


def flat(controller_layers):
    """The flat parameters of `layers` (its inverse): [b, W row-major] per layer, input to output."""
    return np.concatenate([np.concatenate([np.ravel(b), np.ravel(w)]) for w, b in controller_layers]).astype(np.float64)


def stack(many):
    """The `layers` of K controllers as one batch: weights (K, in, out), biases (K, out)."""
    return [(np.stack([c[k][0] for c in many]), np.stack([c[k][1] for c in many])) for k in range(len(many[0]))]


def act(x, controller_layers):
    """The env action for features `x`: (n,) with one controller's `layers`, or (K, n) with K
    controllers' `stack`ed layers, one row each."""
    for weight, bias in controller_layers:
        x = np.tanh(np.dot(x, weight) + bias) if x.ndim == 1 else np.tanh(np.matmul(x[:, None, :], weight)[:, 0] + bias)
    return env_action(x)


def env_action(a):
    """tanh outputs (..., 3) -> (steer, gas, brake): gas = (a1 + 1) / 2, brake = clip(a2, 0, 1)."""
    a[..., 1] = (a[..., 1] + 1.0) / 2.0
    a[..., 2] = np.clip(a[..., 2], 0.0, 1.0)
    return a
