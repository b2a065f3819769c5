"""The search-space file: which networks and which hardware a sweep visits, and the fixed budget.

A TOML file with five tables (every key documented in ``examples/explore/``)::

    [explore]   strategy = "grid" | "random" | "ga", points (random), seed
    [budget]    steps, batch, lr, seed, score_per_point, score_length   (the same for every point)
    [model]     layers, filters, kernel_size, dilation_growth, po2, qformat, rounding, activation,
                input_dim, output_dim
    [hardware]  board, sample_rate, clock_mhz, objective
    [ga]        population, generations, elite, mutation, lambdas

A knob is a value or a list of choices.  Everything is checked before a sweep
starts (and before ``--out`` is created), with one message naming the key:
unknown keys, values out of range, and combinations no back end can build (a
po2 layer in a format that cannot hold the weight +1.0, a Daisy point wider
than the q15 path).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import NnhdlError
from ..fixedpoint import MAX_WIDTH, MIN_WIDTH, QFormat
from ..limits import MAX_CACHE, MAX_DIM, MAX_SAMPLE_RATE
from ..ops import ACTIVATIONS

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["Budget", "GaSettings", "Space", "load_space", "parse_space", "point_id", "network_config",
           "BOARDS", "OBJECTIVES", "LATER_KNOB_DEFAULTS", "identity", "PO2_PATTERNS", "MODEL_KNOBS", "HARDWARE_KNOBS", "DAISY_CLOCK_MHZ"]

#: boards a point may target: the planner's ECP5 parts and the Daisy Seed (Cortex-M7, C back end)
BOARDS = ("ecpix5", "colorlight_i5", "daisy")
#: the Daisy Seed's STM32H750 core clock; a Daisy point's clock is this, whatever [hardware] says
DAISY_CLOCK_MHZ = 480.0
#: which hidden layers are po2: none, all, the first, the last, or every other one (1st, 3rd, ...)
PO2_PATTERNS = ("none", "all", "first", "last", "alternate")
STRATEGIES = ("grid", "random", "ga")
#: the planner objectives of [hardware] objective (see HARDWARE_KNOBS)
OBJECTIVES = ("throughput", "latency")

#: knob -> (type, lo, hi); the genes of the GA and the axes of the grid
MODEL_KNOBS: dict[str, tuple[type, Any, Any]] = {
    "layers": (int, 1, 16),  # dilated hidden layers (a 1x1 output layer always follows)
    "filters": (int, 1, 256),  # channels of every hidden layer
    "kernel_size": (int, 1, 16),
    "dilation_growth": (int, 1, 16),  # hidden layer l has dilation growth**l
    "po2": (str, PO2_PATTERNS, None),
    "qformat": (str, None, None),  # "Q4.12": integer bits (sign included) . fractional bits
    "rounding": (str, ("floor", "nearest"), None),
    "activation": (str, tuple(ACTIVATIONS), None),  # every registered op (nnhdl.ops)
}
HARDWARE_KNOBS: dict[str, tuple[type, Any, Any]] = {
    "board": (str, BOARDS, None),
    "sample_rate": (int, 1, MAX_SAMPLE_RATE),
    "clock_mhz": (float, 0.0, 1000.0),  # FPGA network clock; 0: the part's default
    # what the FPGA planner must fit in one sample period: the initiation interval (fewest multipliers), or
    # the whole latency too (the board's frame f -> f+2 output timing)
    "objective": (str, OBJECTIVES, None),
}
#: knobs added after sweeps were committed, at the value those sweeps used: a point at this value leaves the
#: knob out of its id and cache key, so the committed points keep theirs
LATER_KNOB_DEFAULTS: dict[str, Any] = {"objective": "throughput"}
_FIXED_MODEL = {"input_dim": (3, 4), "output_dim": (1, 4)}
_TABLES = ("explore", "budget", "model", "hardware", "ga")
_EXPLORE_KEYS = {"strategy": "grid", "points": 0, "seed": 0}
_BUDGET_KEYS = {"steps": 300, "batch": 16, "lr": 1e-2, "seed": 0, "score_per_point": 4, "score_length": 2048}
_GA_KEYS = {"population": 8, "generations": 3, "elite": 2, "mutation": 0.3, "lambdas": [0.0, 0.5, 2.0]}


@dataclass(frozen=True)
class Budget:
    """What every point's training and scoring get, identical across points so they compare fairly."""

    steps: int
    batch: int
    lr: float
    seed: int
    score_per_point: int  # held-out windows per corner / edge point
    score_length: int  # samples per held-out window

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class GaSettings:
    population: int
    generations: int
    elite: int
    mutation: float
    lambdas: tuple[float, ...]


@dataclass(frozen=True)
class Space:
    """A validated search space: knob choices, the fixed budget, the strategy's settings."""

    path: str
    strategy: str
    points: int
    seed: int
    budget: Budget
    choices: dict[str, tuple[Any, ...]]  # every knob (model and hardware) -> its choices, in file order
    input_dim: int
    output_dim: int
    ga: GaSettings
    text_digest: str = field(default="")

    def knob_names(self) -> list[str]:
        return list(MODEL_KNOBS) + list(HARDWARE_KNOBS)

    def normalise(self, knobs: dict[str, Any]) -> dict[str, Any]:
        """A point's knobs as evaluated: a Daisy point's clock is the Daisy's (so duplicates merge)."""
        k = {name: knobs[name] for name in self.knob_names()}
        if k["board"] == "daisy":
            k["clock_mhz"] = DAISY_CLOCK_MHZ
            k["objective"] = LATER_KNOB_DEFAULTS["objective"]  # the C back end has one schedule
        return k

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the choices (duplicates merged), in a fixed order."""
        names = self.knob_names()
        seen: dict[str, dict[str, Any]] = {}
        for values in itertools.product(*(self.choices[n] for n in names)):
            k = self.normalise(dict(zip(names, values)))
            seen.setdefault(point_id(k), k)
        return list(seen.values())

    def size(self) -> int:
        return math.prod(len(v) for v in self.choices.values())


def identity(knobs: dict[str, Any]) -> dict[str, Any]:
    """The knobs that name a point: all of them, less any :data:`LATER_KNOB_DEFAULTS` knob at its default."""
    return {k: v for k, v in knobs.items() if k not in LATER_KNOB_DEFAULTS or v != LATER_KNOB_DEFAULTS[k]}


def point_id(knobs: dict[str, Any]) -> str:
    """A short content hash of a point's knobs: its name in the tables, its order in every output."""
    return hashlib.sha256(json.dumps(identity(knobs), sort_keys=True).encode()).hexdigest()[:12]


def parse_qformat(text: str) -> QFormat:
    """``"Q4.12"`` -> QFormat(16, 12); ValueError on anything else."""
    t = text.strip()
    if not (t[:1] in "Qq" and t.count(".") == 1):
        raise ValueError(f"{text!r} is not a Q format like \"Q4.12\"")
    i, f = t[1:].split(".")
    if not (i.isdigit() and f.isdigit()):
        raise ValueError(f"{text!r} is not a Q format like \"Q4.12\"")
    return QFormat(int(i) + int(f), int(f))


def hidden_kinds(pattern: str, layers: int) -> list[str]:
    """Which of ``layers`` hidden layers are po2 under ``pattern`` (:data:`PO2_PATTERNS`)."""
    po2 = {"none": lambda n: False, "all": lambda n: True, "first": lambda n: n == 0,
           "last": lambda n: n == layers - 1, "alternate": lambda n: n % 2 == 0}[pattern]
    return ["po2" if po2(n) else "qb" for n in range(layers)]


def network_config(knobs: dict[str, Any], input_dim: int, output_dim: int, name: str) -> dict[str, Any]:
    """The point's network as a ``training.train --config`` JSON object (:meth:`NetworkSpec.to_json`)."""
    fmt = parse_qformat(knobs["qformat"])
    layers = [{"kernel_size": knobs["kernel_size"], "dilation": knobs["dilation_growth"] ** n,
               "out_dim": knobs["filters"], "kind": kind, "activation": knobs["activation"], "relu_max": None}
              for n, kind in enumerate(hidden_kinds(knobs["po2"], knobs["layers"]))]
    layers.append({"kernel_size": 1, "dilation": 1, "out_dim": output_dim, "kind": "qb", "activation": "none",
                   "relu_max": None})
    return {"name": name, "input_dim": input_dim, "sample_rate": knobs["sample_rate"],
            "qformat": {"width": fmt.width, "frac": fmt.frac}, "rounding": knobs["rounding"], "layers": layers}


# -- reading and checking ---------------------------------------------------

def load_space(path: str | Path) -> Space:
    """Read and validate a space file; :class:`NnhdlError` naming the file and the key otherwise."""
    from ..inputs import input_file

    p = input_file(path, "search-space file", 1 << 20)
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise NnhdlError(f"{path}: not UTF-8 text") from None
    return parse_space(text, str(path))


def parse_space(text: str, where: str = "space") -> Space:
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise NnhdlError(f"{where}: not valid TOML ({e})") from None
    try:
        space = _parse(d, where)
    except _Bad as e:
        raise NnhdlError(f"{where}: {e}") from None
    return space


class _Bad(Exception):
    """One key's problem: ``key: what is wrong``."""


def _table(d: dict, name: str) -> dict:
    t = d.get(name, {})
    if not isinstance(t, dict):
        raise _Bad(f"{name}: must be a table [{name}]")
    return t


def _unknown(t: dict, allowed: Sequence[str], table: str) -> None:
    for k in t:
        if k not in allowed:
            raise _Bad(f"{table}.{k}: unknown key (known: {', '.join(allowed)})")


def _scalar(v: Any, key: str, typ: type, lo: Any = None, hi: Any = None, *, lo_open: bool = False) -> Any:
    if typ is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if isinstance(v, bool) or not isinstance(v, typ):
        raise _Bad(f"{key}: must be {'an integer' if typ is int else 'a number' if typ is float else 'a string'}, "
                   f"got {v!r}")
    if typ is float and not math.isfinite(v):
        raise _Bad(f"{key}: must be a finite number, got {v!r}")
    if isinstance(lo, tuple):
        if v not in lo:
            raise _Bad(f"{key}: {v!r} is not one of {', '.join(map(str, lo))}")
    elif lo is not None and (v < lo or (lo_open and v == lo)) or hi is not None and v > hi:
        raise _Bad(f"{key}: {v!r} is outside {'(' if lo_open else '['}{lo}, {hi}]")
    return v


def _choices(t: dict, name: str, table: str, spec: tuple[type, Any, Any], default: Any) -> tuple[Any, ...]:
    v = t.get(name, default)
    values = v if isinstance(v, list) else [v]
    key = f"{table}.{name}"
    if not values:
        raise _Bad(f"{key}: an empty list of choices")
    out = []
    for n, item in enumerate(values):
        item = _scalar(item, key if len(values) == 1 else f"{key}[{n}]", *spec)
        if name == "qformat":
            try:
                parse_qformat(item)
            except ValueError as e:
                raise _Bad(f"{key}: {e} (width {MIN_WIDTH}..{MAX_WIDTH})") from None
        if item in out:
            raise _Bad(f"{key}: {item!r} is listed twice")
        out.append(item)
    return tuple(out)


_MODEL_DEFAULTS = {"layers": 2, "filters": 8, "kernel_size": 4, "dilation_growth": 4, "po2": "none",
                   "qformat": "Q4.12", "rounding": "floor", "activation": "relu"}
_HARDWARE_DEFAULTS = {"board": "ecpix5", "sample_rate": 192000, "clock_mhz": 0.0, **LATER_KNOB_DEFAULTS}


def _parse(d: dict, where: str) -> Space:
    _unknown(d, _TABLES, "space")
    ex, bu, mo, hw, ga = (_table(d, n) for n in _TABLES)
    _unknown(ex, list(_EXPLORE_KEYS), "explore")
    _unknown(bu, list(_BUDGET_KEYS), "budget")
    _unknown(mo, list(MODEL_KNOBS) + list(_FIXED_MODEL), "model")
    _unknown(hw, list(HARDWARE_KNOBS), "hardware")
    _unknown(ga, list(_GA_KEYS), "ga")

    strategy = _scalar(ex.get("strategy", "grid"), "explore.strategy", str, STRATEGIES)
    points = _scalar(ex.get("points", 0), "explore.points", int, 0, 100_000)
    seed = _scalar(ex.get("seed", 0), "explore.seed", int, 0, (1 << 32) - 1)
    if strategy == "random" and points < 1:
        raise _Bad("explore.points: strategy \"random\" needs points >= 1 (how many to draw)")

    budget = Budget(
        steps=_scalar(bu.get("steps", _BUDGET_KEYS["steps"]), "budget.steps", int, 1, 10_000_000),
        batch=_scalar(bu.get("batch", _BUDGET_KEYS["batch"]), "budget.batch", int, 1, 4096),
        lr=_scalar(bu.get("lr", _BUDGET_KEYS["lr"]), "budget.lr", float, 0.0, 10.0, lo_open=True),
        seed=_scalar(bu.get("seed", _BUDGET_KEYS["seed"]), "budget.seed", int, 0, (1 << 32) - 1),
        score_per_point=_scalar(bu.get("score_per_point", 4), "budget.score_per_point", int, 1, 64),
        score_length=_scalar(bu.get("score_length", 2048), "budget.score_length", int, 256, 1 << 16),
    )
    choices: dict[str, tuple[Any, ...]] = {}
    for name, spec in MODEL_KNOBS.items():
        choices[name] = _choices(mo, name, "model", spec, _MODEL_DEFAULTS[name])
    for name, spec in HARDWARE_KNOBS.items():
        choices[name] = _choices(hw, name, "hardware", spec, _HARDWARE_DEFAULTS[name])
    input_dim = _scalar(mo.get("input_dim", 4), "model.input_dim", int, *_FIXED_MODEL["input_dim"])
    output_dim = _scalar(mo.get("output_dim", 1), "model.output_dim", int, *_FIXED_MODEL["output_dim"])

    lambdas = ga.get("lambdas", _GA_KEYS["lambdas"])
    if not isinstance(lambdas, list) or not lambdas:
        raise _Bad("ga.lambdas: must be a non-empty list of numbers (the cost weights swept)")
    settings = GaSettings(
        population=_scalar(ga.get("population", 8), "ga.population", int, 2, 1000),
        generations=_scalar(ga.get("generations", 3), "ga.generations", int, 1, 1000),
        elite=_scalar(ga.get("elite", 2), "ga.elite", int, 0, 1000),
        mutation=_scalar(ga.get("mutation", 0.3), "ga.mutation", float, 0.0, 1.0),
        lambdas=tuple(_scalar(v, f"ga.lambdas[{n}]", float, 0.0, 1e6) for n, v in enumerate(lambdas)),
    )
    if settings.elite >= settings.population:
        raise _Bad(f"ga.elite: {settings.elite} must be below ga.population ({settings.population})")

    _check_combinations(choices, input_dim)
    return Space(where, strategy, points, seed, budget, choices, input_dim, output_dim, settings,
                 hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest())


def _check_combinations(c: dict[str, tuple[Any, ...]], input_dim: int) -> None:
    """Refuse combinations that no back end can build, naming the key."""
    uses_po2 = any(p != "none" for p in c["po2"])
    for text in c["qformat"]:
        fmt = parse_qformat(text)
        # A po2 weight is 0 or +-2**-k, 0 <= k <= frac: the mantissa of +1.0 (2**frac) must fit, and at least
        # one shift (frac >= 1) must exist, or the layer has no weights other than 0 and +-1.
        if uses_po2 and (fmt.frac > fmt.width - 2 or fmt.frac < 1):
            raise _Bad(f"model.qformat: {text} cannot hold the po2 shifts of model.po2 = "
                       f"{[p for p in c['po2'] if p != 'none']} (po2 weights 2**-k, 0 <= k <= frac, need "
                       f"1 <= frac <= width - 2: the mantissa of +1.0, 2**{fmt.frac}, must fit {fmt.width} bits)")
        if "daisy" in c["board"] and fmt.width > 16:
            raise _Bad(f"model.qformat: {text} is {fmt.width} bits wide; hardware.board \"daisy\" runs the q15 "
                       "(SMLAD) C path, which holds at most 16-bit mantissas")
    # the largest activation cache any point builds
    last = max(c["layers"]) - 1
    for k in c["kernel_size"]:
        for g in c["dilation_growth"]:
            cache = (k - 1) * g ** last + 1
            if cache > MAX_CACHE:
                raise _Bad(f"model.dilation_growth: {g} with {max(c['layers'])} layers and kernel_size {k} gives "
                           f"an activation cache of {cache:,} entries, above the limit of {MAX_CACHE:,}")
    if max(c["filters"]) > MAX_DIM:
        raise _Bad(f"model.filters: above the limit of {MAX_DIM}")
