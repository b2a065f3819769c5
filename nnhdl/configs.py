"""Layer lists without weights: the reference networks (DESIGN §4) and a
generator of models with random weights, for tests, benchmarks and hardware
work before trained weights exist."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import ModelError
from .inputs import expect_keys, json_int, read_json
from .limits import MAX_DIM, check_layer_shape, check_network_size, check_sample_rate
from .fixedpoint import QFormat, quantize_po2
from .model import Layer, Model

__all__ = ["LayerSpec", "NetworkSpec", "REFERENCE", "HARDWARE", "CONFIGS", "reference_spec", "random_model",
           "load_spec"]


@dataclass(frozen=True)
class LayerSpec:
    """Shape of one layer: ``(kernel_size, dilation, out_dim, kind, activation)``."""

    kernel_size: int
    dilation: int
    out_dim: int
    kind: str = "qb"
    activation: str = "relu"
    relu_max: int | None = None

    def __post_init__(self) -> None:
        for name in ("kernel_size", "dilation", "out_dim"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ModelError(f"{name}: must be a positive integer, got {v!r}")
        # before random_model allocates kernel_size x in x out weights
        check_layer_shape(self.kernel_size, self.dilation, None, self.out_dim, "layer")


@dataclass(frozen=True)
class NetworkSpec:
    """A whole network's shape: input width, layers, number format, rate."""

    name: str
    input_dim: int
    layers: tuple[LayerSpec, ...]
    sample_rate: int = 192000
    qformat: QFormat = QFormat()
    rounding: str = "floor"

    def __post_init__(self) -> None:
        if isinstance(self.input_dim, bool) or not isinstance(self.input_dim, int) or self.input_dim <= 0:
            raise ModelError(f"input_dim: must be a positive integer, got {self.input_dim!r}")
        if not self.layers:
            raise ModelError("layers: a network needs at least one layer")
        check_network_size(len(self.layers))
        if self.input_dim > MAX_DIM:  # before weights [K, input_dim, out] are drawn
            raise ModelError(f"input_dim: {self.input_dim} is above the limit of {MAX_DIM} (README: Limits)")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_dim": self.input_dim,
            "sample_rate": self.sample_rate,
            "qformat": {"width": self.qformat.width, "frac": self.qformat.frac},
            "rounding": self.rounding,
            "layers": [
                {
                    "kernel_size": l.kernel_size,
                    "dilation": l.dilation,
                    "out_dim": l.out_dim,
                    "kind": l.kind,
                    "activation": l.activation,
                    "relu_max": l.relu_max,
                }
                for l in self.layers
            ],
        }


def _spec(name: str, input_dim: int, rate: int, rows: Sequence[tuple]) -> NetworkSpec:
    return NetworkSpec(name, input_dim, tuple(LayerSpec(*r) for r in rows), rate)


REFERENCE: dict[str, NetworkSpec] = {
    "fpga_qb": _spec(
        "fpga_qb", 4, 192000,
        [(4, 1, 16, "qb", "relu"), (4, 4, 16, "qb", "relu"), (4, 16, 4, "qb", "none")],
    ),
    "fpga_po2": _spec(
        "fpga_po2", 4, 192000,
        [
            (4, 1, 8, "qb", "relu"), (4, 4, 8, "qb", "relu"),
            (1, 1, 16, "po2", "none"), (1, 1, 8, "po2", "relu"),
            (1, 1, 16, "po2", "none"), (1, 1, 8, "po2", "relu"),
            (4, 16, 4, "qb", "none"),
        ],
    ),
    "mcu": _spec(
        "mcu", 3, 48000,
        [
            (4, 1, 4, "qb", "relu"), (1, 1, 4, "qb", "relu"),
            (4, 4, 4, "qb", "relu"), (1, 1, 4, "qb", "relu"),
            (4, 16, 4, "qb", "relu"), (1, 1, 4, "qb", "relu"),
            (4, 64, 8, "qb", "relu"), (1, 1, 8, "qb", "relu"),
            (1, 1, 1, "qb", "none"),
        ],
    ),
}


#: Networks sized for the FPGA's physical limit (issue "hardware at scale"), not for the MCU or the
#: original project: ``fpga_wide`` is 50,432 MACs per sample, about 40% of what the ECPIX-5's 156
#: multipliers give at 150 MHz and 192 kHz.
HARDWARE: dict[str, NetworkSpec] = {
    "fpga_wide": _spec(
        "fpga_wide", 4, 192000,
        [(4, 1, 64, "qb", "relu"), (4, 4, 64, "qb", "relu"), (4, 16, 64, "qb", "relu"), (4, 64, 64, "qb", "relu"),
         (1, 1, 4, "qb", "none")],
    ),
}

#: every named configuration (``init --config``, ``training.train --config``)
CONFIGS: dict[str, NetworkSpec] = {**REFERENCE, **HARDWARE}


def reference_spec(name: str) -> NetworkSpec:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ModelError(f"unknown configuration {name!r}; choose one of {', '.join(CONFIGS)}") from None


def load_spec(name_or_path: str) -> NetworkSpec:
    """A reference name (``fpga_qb``) or a JSON file in :meth:`NetworkSpec.to_json` form."""
    if name_or_path in CONFIGS:
        return CONFIGS[name_or_path]
    path = Path(name_or_path)
    if not path.suffix == ".json":
        return reference_spec(name_or_path)
    d = read_json(path, "configuration file", ModelError)
    if not isinstance(d, dict):
        raise ModelError(f"{path}: a configuration is a JSON object")
    try:
        expect_keys(d, CONFIG_KEYS, "config", ModelError)
        q = d.get("qformat", {"width": 16, "frac": 12})
        if not isinstance(q, dict):
            raise ModelError("qformat: must be an object {\"width\": W, \"frac\": F}")
        expect_keys(q, ("width", "frac"), "qformat", ModelError)
        specs = d.get("layers")
        if not isinstance(specs, list):
            raise ModelError("layers: must be a list of layer objects")
        check_network_size(len(specs))
        layers = []
        for n, l in enumerate(specs):
            if not isinstance(l, dict):
                raise ModelError(f"layers[{n}]: must be a JSON object")
            expect_keys(l, CONFIG_LAYER_KEYS, f"layers[{n}]", ModelError)
            if "kernel_size" not in l or "out_dim" not in l:
                raise ModelError(f"layers[{n}]: malformed layer, it needs kernel_size and out_dim")
            try:
                layers.append(LayerSpec(
                    l["kernel_size"], l.get("dilation", 1), l["out_dim"],
                    l.get("kind", "qb"), l.get("activation", "relu"), l.get("relu_max"),
                ))
            except ModelError as e:
                raise ModelError(f"layers[{n}].{e}") from None
        if "input_dim" not in d:
            raise ModelError("input_dim: missing")
        name = d.get("name", path.stem)
        if not isinstance(name, str):
            raise ModelError(f"name: must be a string, got {name!r}")
        try:
            fmt = QFormat(json_int(q.get("width"), "qformat.width", error=ModelError),
                          json_int(q.get("frac"), "qformat.frac", error=ModelError))
        except ValueError as e:
            raise ModelError(f"qformat: {e}") from None
        spec = NetworkSpec(
            name, d["input_dim"], tuple(layers),
            check_sample_rate(d.get("sample_rate", 192000)), fmt, d.get("rounding", "floor"),
        )
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from None
    # Building an all-zero model validates every field with the model's rules.
    random_model(spec, seed=0, scale=0.0)
    return spec


#: Fields of a configuration file and of its layers (anything else is refused).
CONFIG_KEYS = ("name", "input_dim", "sample_rate", "qformat", "rounding", "layers")
CONFIG_LAYER_KEYS = ("kernel_size", "dilation", "out_dim", "kind", "activation", "relu_max")


def random_model(
    spec: NetworkSpec | str,
    seed: int = 0,
    *,
    scale: float = 1.0,
    extreme: bool = False,
    qformat: QFormat | None = None,
    rounding: str | None = None,
    sample_rate: int | None = None,
) -> Model:
    """A valid model with random weights for ``spec``.

    Default weights are He-scaled (``scale * sqrt(2 / fan_in)``) so signals
    neither vanish nor saturate everywhere.  ``extreme=True`` draws mantissas
    uniformly over the whole range (saturation guaranteed), to stress
    hardware.  po2 layers get powers of two either way.
    """
    if isinstance(spec, str):
        spec = load_spec(spec)
    fmt = qformat or spec.qformat
    rng = np.random.default_rng(seed)
    layers = []
    in_dim = spec.input_dim
    for ls in spec.layers:
        shape = (ls.kernel_size, in_dim, ls.out_dim)
        fan_in = ls.kernel_size * in_dim
        if extreme:
            w_float = rng.uniform(fmt.min_value, fmt.max_value, size=shape)
            b_float = rng.uniform(fmt.min_value, fmt.max_value, size=ls.out_dim)
        else:
            w_float = rng.normal(0.0, scale * np.sqrt(2.0 / fan_in), size=shape)
            b_float = rng.normal(0.0, scale * 0.1, size=ls.out_dim)
        weight = quantize_po2(w_float, fmt) if ls.kind == "po2" else fmt.quantize(w_float)
        relu_max = ls.relu_max
        layers.append(
            Layer(
                kind=ls.kind,
                kernel_size=ls.kernel_size,
                dilation=ls.dilation,
                in_dim=in_dim,
                out_dim=ls.out_dim,
                activation=ls.activation,
                relu_max=relu_max,
                weight=weight,
                bias=fmt.quantize(b_float),
            )
        )
        in_dim = ls.out_dim
    model = Model(
        layers=layers,
        qformat=fmt,
        rounding=rounding or spec.rounding,
        input_dim=spec.input_dim,
        sample_rate=sample_rate or spec.sample_rate,
        meta={"name": spec.name, "trained_by": f"nnhdl.configs.random_model(seed={seed})", "notes": "random weights"},
    )
    return model.validate()


def random_spec(rng: np.random.Generator, *, max_layers: int = 4, max_dim: int = 9, kinds: Sequence[str] = ("qb", "po2"),
                kernel_sizes: Sequence[int] = (1, 2, 3, 4), max_dilation: int = 7, qformat: QFormat = QFormat(),
                name: str = "random") -> NetworkSpec:
    """A random layer list: for property tests of every back end."""
    n = int(rng.integers(1, max_layers + 1))
    layers = []
    for _ in range(n):
        act = str(rng.choice(["relu", "none"]))
        relu_max = int(rng.integers(1, qformat.max_int + 1)) if act == "relu" and rng.random() < 0.3 else None
        layers.append(
            LayerSpec(
                int(rng.choice(kernel_sizes)), int(rng.integers(1, max_dilation + 1)),
                int(rng.integers(1, max_dim + 1)), str(rng.choice(list(kinds))), act, relu_max,
            )
        )
    return NetworkSpec(name, int(rng.integers(1, max_dim + 1)), tuple(layers), 48000, qformat,
                       str(rng.choice(["floor", "nearest"])))
