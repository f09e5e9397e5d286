"""Synthetic RunViews: each rule is tested on both sides of its threshold with numbers set here."""
from babysit.doctor import RunView

ORDER = [["fc1", "weights"], ["act1", "tanh"], ["fc2", "weights"], ["act2", "tanh"], ["out", "weights"]]


def layer(name, kind="tanh", mean=0.0, std=0.6, saturated=0.05, dead=0.0, grad_std=1e-3):
    return {"name": name, "kind": kind, "mean": mean, "std": std, "saturated": saturated, "zero": None,
            "dead": dead, "grad_mean": 0.0, "grad_std": grad_std}


def param(name, shape=(10, 10), update=-3.0, norm=1.0):
    return {"name": name, "shape": list(shape), "grad_mean": 0.0, "grad_std": 1e-3, "data_std": 0.1,
            "grad_data": 1e-2, "update_data": update, "norm": norm}


def sample(step, layers=None, params=None, grad_norm=1.0):
    layers = layers if layers is not None else [layer("act1"), layer("act2")]
    params = params if params is not None else [param("fc1.weight"), param("fc2.weight"), param("out.weight", (27, 10))]
    return {"step": step, "layers": layers, "params": params, "grad_norm": grad_norm}


def view(losses=None, samples=None, **kw):
    samples = samples if samples is not None else [sample(1), sample(200)]
    return RunView(losses=losses if losses is not None else [3.3] * 10, samples=samples, order=ORDER, **kw)


def codes(findings):
    return [(f.code, f.where) for f in findings]
