"""What the C emitters need to know about a model before printing code.

Both emitters (Q4.12 integers and float32) share one memory plan: which
layer owns an activation cache (a circular buffer, length the next power of
two >= ``(K-1)*d + 1`` so the index wraps with one AND), which layer reads a
plain scratch vector, and how many bytes everything takes (for the exporter's
flash/RAM budget).  The integer emitter also needs, per layer, a *proof* of
the accumulator width it may use.  A 32-bit SMLAD accumulation is exact when
every value the exact sum can take lies in int32: SMLAD adds modulo 2**32, so
wrap-around in between cannot change a final sum that fits.  The range of the
sum comes from interval arithmetic over the integer semantics
(:func:`accumulator_range`): each input channel of a layer holds a proven
range of mantissas -- the model's inputs the whole format, later layers the
requantised, activated image of the previous layer's accumulator range (ReLU
outputs are never negative, so they add only one side of their weights), and
0 always (the caches start at zero) -- and the sum's extremes take each
weight's product at the end of its channel's range that maximises
(minimises) it.  A layer whose range leaves int32 accumulates in 64 bits with
SMLALD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from nnhdl.errors import NnhdlError
from nnhdl.fixedpoint import activate, requantize, rounding_offset
from nnhdl.model import Layer, Model

from .arith import Arithmetic, arithmetic

__all__ = ["LayerPlan", "ModelPlan", "plan_model", "Footprint", "DAISY_SEED_FLASH", "DAISY_SEED_RAM", "INT32_MAX",
           "INT32_MIN", "accumulator_range", "output_range"]

INT32_MAX = (1 << 31) - 1
INT32_MIN = -(1 << 31)
# Daisy Seed (STM32H750): 128 KiB internal flash for the program, 512 KiB
# AXI SRAM where libDaisy's linker script puts .data and .bss.
DAISY_SEED_FLASH = 128 * 1024
DAISY_SEED_RAM = 512 * 1024


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@dataclass(frozen=True)
class LayerPlan:
    """Memory and arithmetic choices for one layer."""

    index: int
    layer: Layer
    in_pad: int  # in_dim rounded up to even (Q4.12 packs two channels per word)
    cache_rows: int  # 0: reads a scratch vector; else circular buffer length (power of two)
    acc_bound: int  # largest |accumulator| any input can produce (with these weights)
    acc32: bool  # the exact sum provably fits int32
    acc_range: tuple[int, int] = (0, 0)  # smallest and largest exact accumulator (rounding offset included)
    in_range: tuple[tuple[int, int], ...] = ()  # per input channel: the mantissas it can hold

    @property
    def has_cache(self) -> bool:
        return self.cache_rows > 0

    @property
    def words_per_row(self) -> int:
        return self.in_pad // 2

    @property
    def tap_offsets(self) -> list[int]:
        """Rows back from the newest entry, tap k = 0 (oldest) first."""
        l = self.layer
        return [(l.kernel_size - 1 - k) * l.dilation for k in range(l.kernel_size)]


@dataclass(frozen=True)
class Footprint:
    """Bytes of constant data (flash) and state (RAM) plus a code estimate.

    ``measured_flash``/``measured_ram`` are the model object's sizes from
    arm-none-eabi-gcc -O3 when the toolchain is present (then they decide).
    """

    flash_data: int
    ram: int
    code_estimate: int
    measured_flash: int | None = None
    measured_ram: int | None = None

    @property
    def flash(self) -> int:
        if self.measured_flash is not None:
            return self.measured_flash
        return self.flash_data + self.code_estimate

    @property
    def ram_bytes(self) -> int:
        return self.measured_ram if self.measured_ram is not None else self.ram


@dataclass(frozen=True)
class ModelPlan:
    model: Model
    layers: list[LayerPlan]
    arithmetic: Arithmetic

    @property
    def arith(self) -> str:
        """The arithmetic's name ("q412" or "f32")."""
        return self.arithmetic.name

    def footprint(self) -> Footprint:
        """Bytes the emitted program needs (code size is an estimate; ``mcu.check`` measures it)."""
        a = self.arithmetic
        elem = a.value_bytes
        flash = 0
        ram = 0
        code = 512  # step/reset prologue, pointer updates
        for lp in self.layers:
            l = lp.layer
            dim = a.row_words(l.in_dim) * a.lanes  # channels of a stored row (padded)
            taps = l.kernel_size * dim
            flash += taps * l.out_dim * elem + l.out_dim * 4
            ram += (2 * lp.cache_rows if lp.has_cache else 1) * dim * elem + 4  # caches stored twice over
            # Straight-line code: about one 4-byte instruction per row word (a q15
            # pair or one float) and weight, plus a few per output.
            code += (taps // a.lanes) * l.out_dim * 4 + l.out_dim * 12
        out_pad = self.model.output_dim
        ram += out_pad * elem
        return Footprint(flash, ram, code)


Range = tuple[int, int]


def accumulator_range(layer: Layer, model: Model, in_range: Sequence[Range]) -> list[Range]:
    """Per output: the smallest and largest exact accumulator (bias, rounding offset included)
    when input channel ``i`` holds any mantissa in ``in_range[i]`` (every tap of it)."""
    fmt = model.qformat
    lo = np.array([r[0] for r in in_range], dtype=object)[None, :, None]
    hi = np.array([r[1] for r in in_range], dtype=object)[None, :, None]
    w = layer.weight.astype(np.int64).astype(object)  # Python ints: exact for any width
    p_lo, p_hi = w * lo, w * hi
    base = [(int(b) << fmt.frac) + rounding_offset(fmt, model.rounding) for b in layer.bias]
    mins = np.minimum(p_lo, p_hi).sum(axis=(0, 1))
    maxs = np.maximum(p_lo, p_hi).sum(axis=(0, 1))
    return [(base[o] + int(mins[o]), base[o] + int(maxs[o])) for o in range(layer.out_dim)]


def output_range(layer: Layer, model: Model, acc: Sequence[Range]) -> list[Range]:
    """Per output: the mantissas the layer can write (requantise and activate are monotone,
    so the accumulator range's ends map to the output range's ends), widened to hold 0:
    the state every cache starts from."""
    out = []
    for a_lo, a_hi in acc:
        # the accumulator range's ends minus the offset that requantize adds again
        ends = np.array([a_lo, a_hi], dtype=np.int64) - rounding_offset(model.qformat, model.rounding)
        y = activate(requantize(np.clip(ends, -(1 << 62), 1 << 62), model.qformat, model.rounding),
                     layer.activation, layer.relu_max)
        out.append((min(int(y[0]), 0), max(int(y[1]), 0)))
    return out


def accumulator_bound(layer: Layer, model: Model, in_range: Sequence[Range] | None = None) -> int:
    """Largest |exact accumulator| over all inputs in ``in_range`` (default: the whole format)."""
    if in_range is None:
        in_range = [(model.qformat.min_int, model.qformat.max_int)] * layer.in_dim
    acc = accumulator_range(layer, model, in_range)
    return max((max(-lo, hi) for lo, hi in acc), default=0)


def plan_model(model: Model, arith: Arithmetic | str, *, force_acc64: bool = False) -> ModelPlan:
    """Validate ``model`` for ``arith`` and choose buffers and accumulator widths."""
    model.validate()
    a = arithmetic(arith) if isinstance(arith, str) else arith
    fmt = model.qformat
    if a.max_width is not None and fmt.width > a.max_width:
        raise NnhdlError(
            f"model format {fmt} is {fmt.width} bits wide; the {a.name} ({a.max_width_why}) path holds at most "
            f"{a.max_width}-bit mantissas: re-quantise the model to width <= {a.max_width} or export with "
            "--arith f32"
        )
    plans = []
    in_range: list[Range] = [(fmt.min_int, fmt.max_int)] * model.input_dim
    for n, l in enumerate(model.layers):
        acc = accumulator_range(l, model, in_range)
        a_lo = min((r[0] for r in acc), default=0)
        a_hi = max((r[1] for r in acc), default=0)
        plans.append(
            LayerPlan(
                index=n,
                layer=l,
                in_pad=l.in_dim + (l.in_dim & 1),
                cache_rows=_next_pow2(l.cache_length) if l.kernel_size > 1 else 0,
                acc_bound=max(-a_lo, a_hi),
                acc32=(INT32_MIN <= a_lo and a_hi <= INT32_MAX) and not force_acc64,
                acc_range=(a_lo, a_hi),
                in_range=tuple(in_range),
            )
        )
        in_range = output_range(l, model, acc)
    return ModelPlan(model, plans, a)
