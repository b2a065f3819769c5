"""``python -m training.widen``: a wide network's starting point computed from a trained narrow one.

Why: a 64-filter network trained from random weights needs far more steps
than one hour on one core gives it (fpga_qb itself needed 50,000 steps from
random).  Instead the trained narrow model is embedded in the wide one so
that, before any training, the wide network plays (almost) what the narrow
one plays, and fine-tuning only has to teach the extra filters:

- the narrow model's hidden layers fill the first filters of the wide
  layers of the same kernel size and dilation;
- its linear output layer becomes the next wide relu layer twice, as
  ``+z`` and ``-z`` (relu keeps the positive and the negative part);
- any further wide relu layers pass those channels on unchanged (weight 1.0
  on the newest tap), and the final 1x1 linear layer outputs ``pos - neg``.

With floor rounding ``-floor(-a)`` is ``ceil(a)``, so a negative narrow
output can come out one LSB higher; otherwise the integers are the narrow
model's.  Every other weight is He-random (the new filters see all inputs),
except the weights from new filters into the embedded ones and into the
output, which start at zero so that they do not change what is played yet
still get gradients.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nnhdl.argtypes import ArgumentParser, seed
from nnhdl.configs import load_spec
from nnhdl.errors import NnhdlError, run_cli
from nnhdl.model import Model
from nnhdl.outputs import check_output_path

from .model import Net, Params, export_model, init_params, params_from_model

__all__ = ["widen", "main"]


def _check_shapes(narrow: Net, wide: Net) -> int:
    """Raise unless ``wide`` can hold ``narrow`` as described above; returns the pass-through layer count."""
    n, w = narrow.layers, wide.layers
    if narrow.input_dim != wide.input_dim or narrow.fmt != wide.fmt or narrow.rounding != wide.rounding:
        raise NnhdlError("the narrow and wide networks differ in inputs, Q format or rounding")
    extra = len(w) - len(n) - 1
    if extra < 0:
        raise NnhdlError(f"the wide network needs at least {len(n) + 1} layers, it has {len(w)}")
    out_dim = n[-1].out_dim
    for i, (a, b) in enumerate(zip(n, w)):
        last = i == len(n) - 1
        if (a.kind, b.kind) != ("qb", "qb") or (a.kernel_size, a.dilation) != (b.kernel_size, b.dilation):
            raise NnhdlError(f"layer {i}: needs qb layers with the same kernel size and dilation")
        if b.out_dim < (2 * a.out_dim if last else a.out_dim) or b.activation != "relu" or b.relu_max is not None:
            raise NnhdlError(f"layer {i}: the wide layer must be an unbounded relu layer with enough filters")
        if a.activation != ("none" if last else "relu") or a.relu_max is not None:
            raise NnhdlError(f"layer {i}: the narrow model must be unbounded relu layers then a linear one")
    for i in range(len(n), len(w) - 1):
        if w[i].kind != "qb" or w[i].activation != "relu" or w[i].relu_max is not None or w[i].out_dim < 2 * out_dim:
            raise NnhdlError(f"layer {i}: pass-through layers must be unbounded qb relu layers")
    final = w[-1]
    if final.kind != "qb" or final.kernel_size != 1 or final.activation != "none" or final.out_dim != out_dim:
        raise NnhdlError(f"the wide network must end in a linear 1x1 qb layer with {out_dim} outputs")
    return extra


def widen(narrow: Model, wide: Net, key: jax.Array) -> Params:
    """The wide network's parameters (model units) holding ``narrow`` (see the module docstring)."""
    nnet = Net.from_model(narrow)
    _check_shapes(nnet, wide)
    src = [{k: np.asarray(v, np.float64) for k, v in p.items()} for p in params_from_model(narrow)]
    out = [{k: np.array(v, np.float64) for k, v in p.items()} for p in init_params(wide, key)]
    n = len(src)
    for i in range(n):
        w, b, s = out[i]["w"], out[i]["b"], src[i]
        k_in, k_out = s["w"].shape[1], s["w"].shape[2]
        w[:, :, :k_out] = 0.0  # embedded filters: only the narrow model's inputs
        w[:, :k_in, :k_out] = s["w"]
        b[:k_out] = s["b"]
        if i == n - 1:  # the linear output again, negated: relu keeps both signs
            w[:, :, k_out:2 * k_out] = 0.0
            w[:, :k_in, k_out:2 * k_out] = -s["w"]
            b[k_out:2 * k_out] = -s["b"]
    c = 2 * nnet.layers[-1].out_dim
    for i in range(n, len(out) - 1):
        w, b = out[i]["w"], out[i]["b"]
        w[:, :, :c] = 0.0
        w[-1, :c, :c] = np.eye(c)  # newest tap: k = K-1
        b[:c] = 0.0
    half = c // 2
    w = out[-1]["w"]
    w[:] = 0.0
    w[0, :half, :] = np.eye(half)
    w[0, half:c, :] = -np.eye(half)
    out[-1]["b"][:] = 0.0
    return [{k: jnp.asarray(v, jnp.float32) for k, v in p.items()} for p in out]


def run(args: argparse.Namespace) -> int:
    out = check_output_path(args.out, "model file")
    narrow = Model.load(args.source)
    wide = Net.from_spec(load_spec(args.config))
    params = widen(narrow, wide, jax.random.PRNGKey(args.seed))
    meta = {
        "name": wide.name,
        "trained_by": "training.widen (a starting point, not trained)",
        "config": load_spec(args.config).to_json() | {"sample_rate": wide.sample_rate},
        "source": args.source,
        "source_sha256": hashlib.sha256(Path(args.source).read_bytes()).hexdigest(),
        "seed": args.seed,
        "command": f"python -m training.widen --source {args.source} --config {args.config} "
                   f"--seed {args.seed} --out {args.out}",
    }
    model = export_model(params, wide, meta)
    model.save(out)
    print(f"wrote {out}: {wide.name} holding {args.source}, {model.params:,} parameters")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m training.widen", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", required=True, help="the trained narrow model (.npz)")
    p.add_argument("--config", required=True, help="the wide configuration (e.g. fpga_wide)")
    p.add_argument("--seed", type=seed, default=0, help="random seed of the new filters (default 0)")
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    args = p.parse_args(argv)
    return run_cli("training.widen", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
