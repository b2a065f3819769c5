"""The model file, "nnhdl-model" version 1 (DESIGN §3), and its in-memory form.

A model is integers only: mantissas of weights and biases plus a JSON
manifest.  Loading and saving validate everything and raise one
:class:`~nnhdl.errors.ModelError` naming the offending field; nothing is ever
half-loaded and no half-written file is ever left behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import ModelError
from .fixedpoint import ROUNDINGS, QFormat, accumulator_width, is_po2
from .inputs import check_npz, expect_keys, first_outside, input_file, integers_in_range, parse_json
from .limits import (MAX_DIM, MAX_LAYERS, MAX_MANIFEST_BYTES, MAX_MODEL_BYTES, MAX_PARAMS, MAX_STATE, check_layer_shape,
                     check_network_size, check_sample_rate)
from .ops import ACTIVATIONS
from .outputs import readable, write_atomically

FORMAT_NAME = "nnhdl-model"
FORMAT_VERSION = 1
KINDS = ("qb", "po2")
#: The only fields a manifest and a layer entry may have (anything else is a misspelling: refused).
MANIFEST_KEYS = ("format", "version", "qformat", "rounding", "input_dim", "output_dim", "sample_rate", "layers", "meta")
LAYER_KEYS = ("kind", "kernel_size", "dilation", "in_dim", "out_dim", "activation", "relu_max")

__all__ = ["Layer", "Model", "FORMAT_NAME", "FORMAT_VERSION", "KINDS", "write_atomically"]


@dataclass(frozen=True, eq=False)
class Layer:
    """One causal dilated 1-D convolution: ``weight[k, i, o]`` (k = 0 oldest tap)."""

    kind: str
    kernel_size: int
    dilation: int
    in_dim: int
    out_dim: int
    activation: str
    weight: np.ndarray
    bias: np.ndarray
    relu_max: int | None = None

    @property
    def cache_length(self) -> int:
        """Entries of input history the layer needs: ``(K-1)*d + 1``."""
        return (self.kernel_size - 1) * self.dilation + 1

    @property
    def params(self) -> int:
        return self.weight.size + self.bias.size

    @property
    def macs(self) -> int:
        """Multiply-accumulates per sample."""
        return self.kernel_size * self.in_dim * self.out_dim

    @property
    def taps(self) -> int:
        """Products summed into one output (the accumulator's term count)."""
        return self.kernel_size * self.in_dim

    def accumulator_width(self, fmt: QFormat) -> int:
        return accumulator_width(fmt, self.taps)

    def manifest(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "kernel_size": self.kernel_size,
            "dilation": self.dilation,
            "in_dim": self.in_dim,
            "out_dim": self.out_dim,
            "activation": self.activation,
            "relu_max": self.relu_max,
        }

    def with_weights(self, weight: np.ndarray, bias: np.ndarray) -> "Layer":
        return replace(self, weight=np.asarray(weight), bias=np.asarray(bias))


@dataclass(eq=False)
class Model:
    """A validated network: construct it, then :meth:`validate` (done by load/save)."""

    layers: list[Layer]
    qformat: QFormat = field(default_factory=QFormat)
    rounding: str = "floor"
    input_dim: int | None = None  # None: the first layer's in_dim
    sample_rate: int = 192000
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.input_dim is None and self.layers:
            self.input_dim = self.layers[0].in_dim
        # Normalise arrays to int64 so every consumer sees one dtype -- but only where
        # that is exact: a uint64 2**64-1 stays as it is, for validate() to refuse.
        self.layers = [replace(l, weight=_as_int64(l.weight), bias=_as_int64(l.bias)) for l in self.layers]

    # -- derived figures ---------------------------------------------------

    @property
    def output_dim(self) -> int:
        return self.layers[-1].out_dim

    @property
    def params(self) -> int:
        return sum(l.params for l in self.layers)

    @property
    def macs_per_sample(self) -> int:
        return sum(l.macs for l in self.layers)

    @property
    def receptive_field(self) -> int:
        """``1 + sum (K-1)*d``: samples of input that influence one output."""
        return 1 + sum((l.kernel_size - 1) * l.dilation for l in self.layers)

    @property
    def receptive_field_ms(self) -> float:
        return 1000.0 * self.receptive_field / self.sample_rate

    @property
    def name(self) -> str:
        return str(self.meta.get("name", ""))

    def manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "qformat": {"width": self.qformat.width, "frac": self.qformat.frac},
            "rounding": self.rounding,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "sample_rate": self.sample_rate,
            "layers": [l.manifest() for l in self.layers],
            "meta": self.meta,
        }

    def fingerprint(self) -> str:
        """SHA-256 of everything that determines the integers (not ``meta``).

        Two models with equal fingerprints compute the same outputs; the SoC
        stores it in an identification register.
        """
        h = hashlib.sha256()
        m = self.manifest()
        del m["meta"]
        h.update(json.dumps(m, sort_keys=True).encode())
        for l in self.layers:
            h.update(np.ascontiguousarray(l.weight, dtype="<i8").tobytes())
            h.update(np.ascontiguousarray(l.bias, dtype="<i8").tobytes())
        return h.hexdigest()

    # -- hardware identity: plain data, so the UART loader needs neither Amaranth nor LiteX ----------------

    def hardware_manifest(self) -> dict[str, Any]:
        """The manifest without ``meta`` and ``sample_rate``: what a built network fixes (the board's
        build options set its rate, so a model of another rate still loads)."""
        m = self.manifest()
        m.pop("meta")
        m.pop("sample_rate")
        return m

    def same_shapes(self, other: "Model") -> bool:
        """True when ``other`` could be loaded into hardware built for ``self`` (equal :meth:`shape_id`)."""
        return self.hardware_manifest() == other.hardware_manifest()

    def shape_id(self) -> int:
        """64-bit id of :meth:`hardware_manifest`: what a weight reload must match."""
        text = json.dumps(self.hardware_manifest(), sort_keys=True).encode()
        return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")

    def model_id(self) -> int:
        """First 64 bits of :meth:`fingerprint` (weights included)."""
        return int(self.fingerprint()[:16], 16)

    def weight_address_map(self) -> list[tuple[int, str, int, int]]:
        """``(layer, "weight"|"bias", base, length)`` for every block, in the hardware's write-address order."""
        out, base = [], 0
        for n, layer in enumerate(self.layers):
            for what, arr in (("weight", layer.weight), ("bias", layer.bias)):
                out.append((n, what, base, int(arr.size)))
                base += int(arr.size)
        return out

    def weight_image(self) -> np.ndarray:
        """All weights and biases as int64 mantissas, index = the hardware's weight-write address."""
        return np.concatenate([np.asarray(a, dtype=np.int64).ravel()
                               for layer in self.layers for a in (layer.weight, layer.bias)])

    # -- validation --------------------------------------------------------

    def validate(self) -> "Model":
        """Raise ModelError naming the first inconsistency; return self if valid."""
        fmt = self.qformat
        if self.rounding not in ROUNDINGS:
            raise ModelError(f"rounding: must be one of {', '.join(ROUNDINGS)}, got {self.rounding!r}")
        _positive_int(self.input_dim, "input_dim")
        check_sample_rate(self.sample_rate)
        if not isinstance(self.meta, dict):
            raise ModelError("meta: must be a JSON object")
        try:  # names reach C comments, reports and terminals: they must be real text
            json.dumps(self.meta, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise ModelError(f"meta: not plain JSON text ({e})") from None
        if not self.layers:
            raise ModelError("layers: a model needs at least one layer")
        check_network_size(len(self.layers))
        if self.input_dim > MAX_DIM:
            raise ModelError(f"input_dim: {self.input_dim} is above the limit of {MAX_DIM} (README: Limits)")
        previous = self.input_dim
        for n, l in enumerate(self.layers):
            where = f"layers[{n}]"
            if l.kind not in KINDS:
                raise ModelError(f"{where}.kind: must be one of {', '.join(KINDS)}, got {l.kind!r}")
            _positive_int(l.kernel_size, f"{where}.kernel_size")
            _positive_int(l.dilation, f"{where}.dilation")
            _positive_int(l.in_dim, f"{where}.in_dim")
            _positive_int(l.out_dim, f"{where}.out_dim")
            check_layer_shape(l.kernel_size, l.dilation, l.in_dim, l.out_dim, where)
            if l.in_dim != previous:
                source = "input_dim" if n == 0 else f"layers[{n - 1}].out_dim"
                raise ModelError(
                    f"{where}.in_dim: is {l.in_dim} but {source} is {previous}; layer shapes must chain"
                )
            previous = l.out_dim
            if not isinstance(l.activation, str) or l.activation not in ACTIVATIONS:
                raise ModelError(
                    f"{where}.activation: must be one of {', '.join(ACTIVATIONS)}, got {l.activation!r}"
                )
            if l.relu_max is not None:
                if not ACTIVATIONS[l.activation].takes_relu_max:
                    takers = ", ".join(repr(n) for n, a in ACTIVATIONS.items() if a.takes_relu_max)
                    raise ModelError(f"{where}.relu_max: only allowed with activation {takers}")
                if isinstance(l.relu_max, bool) or not isinstance(l.relu_max, (int, np.integer)):
                    raise ModelError(f"{where}.relu_max: must be an integer mantissa or null")
                if not 0 <= l.relu_max <= fmt.max_int:
                    raise ModelError(
                        f"{where}.relu_max: {l.relu_max} is outside 0..{fmt.max_int} for {fmt}"
                    )
            try:
                width = l.accumulator_width(fmt)
            except ValueError as e:
                raise ModelError(f"{where}: {e}") from None
            if width > 64:
                raise ModelError(
                    f"{where}: {l.taps} taps of {fmt} need a {width}-bit accumulator; at most 64 supported"
                )
        params = sum(l.kernel_size * l.in_dim * l.out_dim + l.out_dim for l in self.layers)
        if params > MAX_PARAMS:
            raise ModelError(f"layers: {params:,} parameters is above the limit of {MAX_PARAMS:,} (README: Limits)")
        state = sum(l.cache_length * l.in_dim for l in self.layers)
        if state > MAX_STATE:
            raise ModelError(f"layers: activation caches of {state:,} values in all is above the limit of "
                             f"{MAX_STATE:,} (README: Limits)")
        for n, l in enumerate(self.layers):
            _check_array(l.weight, (l.kernel_size, l.in_dim, l.out_dim), f"layer{n}.weight", fmt)
            _check_array(l.bias, (l.out_dim,), f"layer{n}.bias", fmt)
            if l.kind == "po2":
                ok = is_po2(l.weight, fmt)
                if not np.all(ok):
                    idx = tuple(int(i) for i in np.argwhere(~ok)[0])
                    raise ModelError(
                        f"layer{n}.weight{list(idx)}: {int(l.weight[idx])} is not a power-of-two "
                        f"mantissa (0 or +-2**(frac-k), 0 <= k <= {fmt.frac}) as kind 'po2' requires"
                    )
        return self

    # -- file I/O ----------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Validate, then write atomically (a failed save leaves no file)."""
        self.validate()
        arrays: dict[str, np.ndarray] = {
            "manifest": np.array(json.dumps(self.manifest(), indent=1)),
        }
        for n, l in enumerate(self.layers):
            arrays[f"layer{n}.weight"] = l.weight.astype(np.int32)
            arrays[f"layer{n}.bias"] = l.bias.astype(np.int32)

        def write(f: io.BufferedWriter) -> None:
            np.savez(f, **arrays)

        write_atomically(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Model":
        """Read and validate a model file; raise ModelError on any defect."""
        # readable(): a model written earlier in this command (train --report) reads before it is committed
        path = input_file(readable(path), "model file", MAX_MODEL_BYTES, ModelError)
        if not zipfile.is_zipfile(path):
            raise ModelError(f"{path}: not an nnhdl model (.npz) file")
        check_npz(path, MAX_MODEL_BYTES, 2 * MAX_LAYERS + 1, ModelError)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:  # truncated/corrupt zip members, pickled objects, ...
            raise ModelError(f"{path}: cannot read the npz file ({type(e).__name__}: {e}); truncated or corrupt?") from None
        try:
            return cls.from_arrays(arrays)
        except ModelError as e:
            raise ModelError(f"{path}: {e}") from None

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Model":
        """Build and validate a model from the arrays of a model file."""
        if "manifest" not in arrays:
            raise ModelError("manifest: missing (not an nnhdl-model file)")
        raw = arrays["manifest"]
        if raw.shape != () or raw.dtype.kind != "U":
            raise ModelError("manifest: must be a 0-d unicode string array holding JSON")
        if raw.nbytes > 4 * MAX_MANIFEST_BYTES:
            raise ModelError(f"manifest: longer than the limit of {MAX_MANIFEST_BYTES:,} characters (README: Limits)")
        m = parse_json(str(raw), "manifest", ModelError)
        if not isinstance(m, dict):
            raise ModelError("manifest: must be a JSON object")
        expect_keys(m, MANIFEST_KEYS, "manifest", ModelError)
        if m.get("format") != FORMAT_NAME:
            raise ModelError(f"manifest.format: expected {FORMAT_NAME!r}, got {m.get('format')!r}")
        if m.get("version") != FORMAT_VERSION:
            raise ModelError(
                f"manifest.version: {m.get('version')!r} is not supported (this nnhdl reads version "
                f"{FORMAT_VERSION}); upgrade nnhdl or re-export the model"
            )
        q = _field(m, "qformat", dict, "manifest")
        expect_keys(q, ("width", "frac"), "qformat", ModelError)
        try:
            fmt = QFormat(_field(q, "width", int, "qformat"), _field(q, "frac", int, "qformat"))
        except ValueError as e:
            raise ModelError(f"qformat: {e}") from None
        layer_specs = _field(m, "layers", list, "manifest")
        check_network_size(len(layer_specs), "manifest.layers")
        layers = []
        expected = {"manifest"}
        for n, spec in enumerate(layer_specs):
            where = f"layers[{n}]"
            if not isinstance(spec, dict):
                raise ModelError(f"{where}: must be a JSON object")
            expect_keys(spec, LAYER_KEYS, where, ModelError)
            names = (f"layer{n}.weight", f"layer{n}.bias")
            for name in names:
                if name not in arrays:
                    raise ModelError(f"{name}: array missing")
                if not np.issubdtype(arrays[name].dtype, np.integer):
                    raise ModelError(
                        f"{name}: dtype {arrays[name].dtype} is not an integer type; model files hold "
                        "integer mantissas (quantise before saving)"
                    )
            expected.update(names)
            relu_max = spec.get("relu_max")
            layers.append(
                Layer(
                    kind=_field(spec, "kind", str, where),
                    kernel_size=_field(spec, "kernel_size", int, where),
                    dilation=_field(spec, "dilation", int, where),
                    in_dim=_field(spec, "in_dim", int, where),
                    out_dim=_field(spec, "out_dim", int, where),
                    activation=_field(spec, "activation", str, where),
                    relu_max=relu_max,
                    weight=arrays[names[0]],
                    bias=arrays[names[1]],
                )
            )
        extra = sorted(set(arrays) - expected)
        if extra:
            raise ModelError(f"{extra[0]}: unexpected array (the manifest lists {len(layers)} layers)")
        model = cls(
            layers=layers,
            qformat=fmt,
            rounding=_field(m, "rounding", str, "manifest"),
            input_dim=_field(m, "input_dim", int, "manifest"),
            sample_rate=_field(m, "sample_rate", int, "manifest"),
            meta=m.get("meta", {}) if m.get("meta") is not None else {},
        )
        model.validate()
        output_dim = _field(m, "output_dim", int, "manifest")
        if output_dim != model.output_dim:
            raise ModelError(
                f"output_dim: is {output_dim} but the last layer's out_dim is {model.output_dim}"
            )
        return model


# -- helpers ---------------------------------------------------------------


def _field(d: dict, key: str, typ: type, where: str) -> Any:
    if key not in d:
        raise ModelError(f"{where}.{key}: missing")
    v = d[key]
    if typ is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise ModelError(f"{where}.{key}: must be an integer, got {v!r}")
    if typ is not int and not isinstance(v, typ):
        raise ModelError(f"{where}.{key}: must be a {typ.__name__}, got {type(v).__name__}")
    return v


def _positive_int(v: Any, name: str) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ModelError(f"{name}: must be a positive integer, got {v!r}")


def _as_int64(a: Any) -> np.ndarray:
    a = np.asarray(a)
    if np.issubdtype(a.dtype, np.integer) and integers_in_range(a, -(1 << 63), (1 << 63) - 1):
        return a.astype(np.int64)
    return a


def _check_array(a: np.ndarray, shape: tuple[int, ...], name: str, fmt: QFormat) -> None:
    if not np.issubdtype(a.dtype, np.integer):
        raise ModelError(f"{name}: dtype {a.dtype} is not an integer type")
    if a.shape != shape:
        raise ModelError(f"{name}: shape {list(a.shape)} does not match the manifest, expected {list(shape)}")
    if not integers_in_range(a, fmt.min_int, fmt.max_int):
        idx, bad = first_outside(a, fmt.min_int, fmt.max_int)
        raise ModelError(
            f"{name}{list(idx)}: value {bad} does not fit {fmt.width} bits ({fmt}: {fmt.min_int}..{fmt.max_int})"
        )
