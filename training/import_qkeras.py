"""``python -m training.import_qkeras``: a qkeras-trained network -> nnhdl model file.

Inputs are what the original project kept after training with qkeras:

* the dict ``qkeras.utils.model_save_quantized_weights(model)`` returns,
  ``{layer_id: {"weights": [kernel [K, in, out], bias [out]], ("signs": ...)}}``,
  pickled (``.pkl``) or saved as ``.npz`` with arrays named
  ``LAYER_ID/kernel`` and ``LAYER_ID/bias``;
* the layer-info list (JSON): entries ``{"type": "qb"|"po2", "id": LAYER_ID}``
  for convolutions, ``{"type": "relu"}`` for the activation of the preceding
  convolution and ``{"type": "dilation", "amount": D, "depth": C}`` for the
  activation cache (dilation D, C channels) feeding the next convolution.
  The first convolution reads the input with dilation 1.

Nothing here needs TensorFlow.  Every weight is checked: qb values must be
exact mantissas of the target format, po2 values are snapped to the nearest
power of two in [2**-F, 1] (or 0) and the snap must stay within a tolerance.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nnhdl.argtypes import ArgumentParser, finite_float, int_range
from nnhdl.errors import NnhdlError, run_cli
from nnhdl.fixedpoint import MAX_WIDTH, MIN_WIDTH, QFormat, quantize_po2
from nnhdl.inputs import check_npz, expect_keys, finite, input_file, json_int, read_json
from nnhdl.limits import MAX_ARRAY_ELEMENTS, MAX_DILATION, MAX_LAYERS, MAX_SAMPLE_RATE, MAX_WEIGHTS_BYTES
from nnhdl.model import Layer, Model

__all__ = ["load_weights", "load_layer_info", "import_qkeras", "main"]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickle plain containers and numpy arrays only.

    A weight dict is dicts, lists and ndarrays; refusing every other global
    means a hostile ``.pkl`` cannot run code on import.
    """

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"),
        ("collections", "OrderedDict"), ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            found = super().find_class(module, name)
            return _bounded_reconstruct(found) if name == "_reconstruct" else found
        raise NnhdlError(f"refusing to unpickle {module}.{name}: a qkeras weight dict holds only dicts, "
                         "lists and numpy arrays")


def _bounded_reconstruct(reconstruct: Any) -> Any:
    """numpy's ``_reconstruct`` allocates whatever shape the pickle names: bound it first.

    (The data itself arrives in the pickle, so the file size bounds it; only
    this empty allocation could be made huge by a few bytes.)
    """

    def guarded(subtype: Any, shape: Any, dtype: Any) -> Any:
        try:
            elements = int(np.prod(np.asarray(shape, dtype=np.int64)))
            itemsize = np.dtype(dtype).itemsize
        except (TypeError, ValueError, OverflowError):
            raise NnhdlError("the pickle describes an array with an invalid shape or dtype") from None
        if elements < 0 or elements > MAX_ARRAY_ELEMENTS or elements * itemsize > MAX_WEIGHTS_BYTES:
            raise NnhdlError(f"the pickle asks for an array of {elements:,} elements, above the limit of "
                             f"{MAX_ARRAY_ELEMENTS:,} (README: Limits)")
        return reconstruct(subtype, shape, dtype)

    return guarded


def load_weights(path: str | Path) -> dict[str, list[np.ndarray]]:
    """``{layer_id: [kernel, bias]}`` from a pickled qkeras weight dict or an ``.npz``."""
    path = input_file(path, "weights file", MAX_WEIGHTS_BYTES)
    if path.suffix == ".npz":
        check_npz(path, MAX_WEIGHTS_BYTES, 2 * MAX_LAYERS)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:
            raise NnhdlError(f"{path}: cannot read the .npz ({type(e).__name__}: {e})") from None
        out: dict[str, list[np.ndarray]] = {}
        for key in arrays:
            lid, _, part = key.rpartition("/")
            if part not in ("kernel", "bias") or not lid:
                raise NnhdlError(f"{path}: array {key!r} is not named LAYER_ID/kernel or LAYER_ID/bias")
        for lid in sorted({k.rpartition("/")[0] for k in arrays}):
            if f"{lid}/kernel" not in arrays or f"{lid}/bias" not in arrays:
                raise NnhdlError(f"{path}: layer {lid!r} needs both {lid}/kernel and {lid}/bias")
            out[lid] = [arrays[f"{lid}/kernel"], arrays[f"{lid}/bias"]]
        return out
    try:
        with path.open("rb") as f:
            raw = _NumpyOnlyUnpickler(f).load()
    except NnhdlError as e:
        raise NnhdlError(f"{path}: {e}") from None
    except MemoryError:
        raise NnhdlError(f"{path}: the pickle asks for more memory than a weight dict can need") from None
    except Exception as e:
        raise NnhdlError(f"{path}: not a pickled weight dict ({type(e).__name__}: {' '.join(str(e).split())[:200]})") \
            from None
    if not isinstance(raw, dict):
        raise NnhdlError(f"{path}: expected a dict of layers, got {type(raw).__name__}")
    out = {}
    for lid, entry in raw.items():
        ws = entry.get("weights") if isinstance(entry, dict) else None
        if not isinstance(ws, (list, tuple)) or len(ws) != 2:
            raise NnhdlError(f"{path}: layer {lid!r} must be {{'weights': [kernel, bias]}} (a conv with bias)")
        arrays = []
        for part, w in zip(("kernel", "bias"), ws):
            a = np.asarray(w) if isinstance(w, (np.ndarray, list, tuple)) else None
            if a is None or a.dtype.kind not in "biufc":
                raise NnhdlError(f"{path}: layer {lid!r} {part} is not a numeric array")
            arrays.append(a)
        out[str(lid)] = arrays
    return out


def load_layer_info(path: str | Path) -> list[dict[str, Any]]:
    info = read_json(path, "layer-info file")
    if not isinstance(info, list) or not all(isinstance(e, dict) for e in info):
        raise NnhdlError(f"{path}: layer info must be a JSON list of objects")
    for n, entry in enumerate(info):
        where = f"{path}: layer_info[{n}]"
        kind = entry.get("type")
        if not isinstance(kind, str) or kind not in _INFO_KEYS:
            raise NnhdlError(f"{where}: unknown type {kind!r} (expected qb, po2, relu or dilation)")
        expect_keys(entry, _INFO_KEYS[kind], where)
        if kind in ("qb", "po2") and not isinstance(entry.get("id"), str):
            raise NnhdlError(f"{where}.id: must be a string (the layer's name in the weights), got {entry.get('id')!r}")
        if kind == "dilation":
            if "amount" not in entry:
                raise NnhdlError(f"{where}: dilation entry needs 'amount'")
            json_int(entry["amount"], f"{where}.amount", 1, MAX_DILATION)
            if "depth" in entry:
                json_int(entry["depth"], f"{where}.depth", 1)
    return info


#: The fields each kind of layer-info entry may have.
_INFO_KEYS = {"qb": ("type", "id"), "po2": ("type", "id"), "relu": ("type",),
              "dilation": ("type", "amount", "depth")}


def _mantissas(a: np.ndarray, fmt: QFormat, what: str) -> np.ndarray:
    """Exact mantissas of ``a`` or an error naming the first offending value."""
    scaled = finite(a, what) * fmt.scale
    m = np.rint(scaled)
    off = np.abs(scaled - m) > 1e-6
    if np.any(off):
        i = tuple(int(v) for v in np.argwhere(off)[0])
        raise NnhdlError(f"{what}{list(i)} = {float(np.asarray(a)[i])!r} is not a multiple of 2**-{fmt.frac} "
                         f"({fmt}); was it trained with quantized_bits({fmt.width}, {fmt.int_bits - 1}, alpha=1)? "
                         "(pass --round to round it)")
    bad = (m < fmt.min_int) | (m > fmt.max_int)
    if np.any(bad):
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise NnhdlError(f"{what}{list(i)} = {float(np.asarray(a)[i])!r} is outside {fmt} "
                         f"[{fmt.min_value}, {fmt.max_value}]")
    return m.astype(np.int64)


def import_qkeras(weights: dict[str, list[np.ndarray]], layer_info: list[dict[str, Any]], *,
                  fmt: QFormat = QFormat(), rounding: str = "floor", sample_rate: int = 192000,
                  po2_tolerance: float | None = None, round_values: bool = False,
                  name: str = "qkeras") -> Model:
    """Build and validate the nnhdl model the weight dict and layer info describe."""
    tol = po2_tolerance if po2_tolerance is not None else 0.5 / fmt.scale
    layers: list[Layer] = []
    pending_dilation: dict[str, Any] | None = None
    used: set[str] = set()
    for n, entry in enumerate(layer_info):
        kind = entry.get("type")
        where = f"layer_info[{n}]"
        if kind in ("qb", "po2"):
            lid = entry.get("id")
            if lid not in weights:
                raise NnhdlError(f"{where}: id {lid!r} is not in the weights (have {', '.join(sorted(weights))})")
            if lid in used:
                raise NnhdlError(f"{where}: id {lid!r} is used twice")
            used.add(lid)
            kernel, bias = (finite(a, f"{lid}.{part}") for a, part in zip(weights[lid], ("kernel", "bias")))
            if kernel.ndim != 3 or bias.shape != (kernel.shape[-1],):
                raise NnhdlError(f"{lid}: kernel shape {list(kernel.shape)} / bias shape {list(bias.shape)} is not "
                                 "a Conv1D's [K, in, out] / [out]")
            k, in_dim, out_dim = kernel.shape
            if layers and in_dim != layers[-1].out_dim:
                raise NnhdlError(f"{lid}: has {in_dim} input channels but the previous layer gives {layers[-1].out_dim}")
            if pending_dilation is not None:
                dilation = int(pending_dilation["amount"])
                if int(pending_dilation.get("depth", in_dim)) != in_dim:
                    raise NnhdlError(f"{lid}: the dilation entry before it has depth {pending_dilation['depth']} "
                                     f"but the layer has {in_dim} input channels")
            elif k > 1 and layers:
                raise NnhdlError(f"{where}: {lid} has kernel size {k} but no dilation entry precedes it")
            else:
                dilation = 1
            pending_dilation = None
            if kind == "po2":
                m = quantize_po2(kernel, fmt)
                err = np.abs(m / fmt.scale - kernel)
                if np.any(err > tol):
                    i = tuple(int(v) for v in np.argwhere(err > tol)[0])
                    raise NnhdlError(f"{lid}.kernel{list(i)} = {kernel[i]!r} is not a power of two in "
                                     f"[2**-{fmt.frac}, 1] (nearest {m[i] / fmt.scale!r}, off by {err[i]:.3g} > "
                                     f"tolerance {tol:.3g})")
                weight = m
            elif round_values:
                weight = fmt.quantize(kernel)
            else:
                weight = _mantissas(kernel, fmt, f"{lid}.kernel")
            b = fmt.quantize(bias) if round_values else _mantissas(bias, fmt, f"{lid}.bias")
            layers.append(Layer(kind, k, dilation, in_dim, out_dim, "none", weight, b))
        elif kind == "relu":
            if not layers or layers[-1].activation != "none":
                raise NnhdlError(f"{where}: relu must follow a convolution (once)")
            last = layers[-1]
            layers[-1] = Layer(last.kind, last.kernel_size, last.dilation, last.in_dim, last.out_dim, "relu",
                               last.weight, last.bias)
        elif kind == "dilation":
            if "amount" not in entry:
                raise NnhdlError(f"{where}: dilation entry needs 'amount'")
            if not layers:
                raise NnhdlError(f"{where}: a dilation entry must follow a convolution")
            pending_dilation = entry
        else:
            raise NnhdlError(f"{where}: unknown type {kind!r} (expected qb, po2, relu or dilation)")
    if not layers:
        raise NnhdlError("layer info lists no convolutions (qb/po2 entries)")
    if pending_dilation is not None:
        raise NnhdlError("layer info ends with a dilation entry that feeds no layer")
    unused = sorted(set(weights) - used)
    if unused:
        raise NnhdlError(f"weights {', '.join(unused)} are not named in the layer info")
    model = Model(layers, fmt, rounding, layers[0].in_dim, sample_rate,
                  {"name": name, "trained_by": "qkeras (imported by training.import_qkeras)"})
    return model.validate()


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m training.import_qkeras", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", required=True, help="model_save_quantized_weights dict (.pkl) or .npz")
    p.add_argument("--layer-info", required=True, help="layer-info list (JSON)")
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    p.add_argument("--width", type=int_range(MIN_WIDTH, MAX_WIDTH), default=16, help="fixed-point width (default 16)")
    p.add_argument("--frac", type=int_range(0, MAX_WIDTH - 1), default=12, help="fractional bits (default 12: Q4.12)")
    p.add_argument("--rounding", choices=("floor", "nearest"), default="floor", help="layer output rounding (default floor)")
    p.add_argument("--sample-rate", type=int_range(1, MAX_SAMPLE_RATE), default=192000, help="sample rate in Hz (default 192000)")
    p.add_argument("--po2-tolerance", type=finite_float(0.0, 1.0), default=None,
                   help="largest allowed |po2 snap| in model units (default half an LSB)")
    p.add_argument("--round", action="store_true",
                   help="round qb values that are not exact mantissas instead of refusing them")
    args = p.parse_args(argv)
    return run_cli("training.import_qkeras", lambda: _import_cli(args))


def _import_cli(args: argparse.Namespace) -> int:
    try:
        fmt = QFormat(args.width, args.frac)
    except ValueError as e:
        raise NnhdlError(str(e)) from None
    from nnhdl.outputs import check_output_path

    check_output_path(args.out, "model file")
    model = import_qkeras(load_weights(args.weights), load_layer_info(args.layer_info), fmt=fmt,
                          rounding=args.rounding, sample_rate=args.sample_rate,
                          po2_tolerance=args.po2_tolerance, round_values=args.round,
                          name=Path(args.out).stem)
    model.save(args.out)
    print(f"wrote {args.out}: {len(model.layers)} layers, {model.params:,} parameters, {model.qformat}, "
          f"receptive field {model.receptive_field}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
