"""Stream samples through a component in amaranth.sim (the Python simulator).

:func:`stream_through` drives any component with ``i``/``o`` streams of
``ArrayLayout`` payloads, optionally with random ``valid`` gaps and random
``ready``, and can pulse the reset mid-stream.  Slow (~10^4 cycles/s) but needs
nothing beyond Amaranth; use Verilator for long audio.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
from amaranth import Module, ResetInserter, Signal
from amaranth.sim import Simulator

__all__ = ["SimResult", "stream_through", "measure_latency", "measure_pipeline", "PipelineTiming"]


@dataclass
class SimResult:
    output: np.ndarray
    cycles: int
    latencies: list[int] = field(default_factory=list)


def _wrap(dut):
    m = Module()
    rst = Signal()
    m.submodules.dut = ResetInserter(rst)(dut)
    return m, rst


def stream_through(dut, x: np.ndarray, *, stall: float = 0.0, seed: int = 0, reset_after: int | None = None,
                   vcd: str | None = None, max_cycles: int | None = None, setup=None,
                   outputs_per_input: int = 1, progress=None) -> SimResult:
    """Feed the rows of ``x`` into ``dut.i``, collect rows from ``dut.o``.

    ``stall``: probability of a ``valid`` gap before each input and of
    ``ready`` being low in each cycle.  ``reset_after=n``: after the n-th
    output, pulse the synchronous reset (through a ResetInserter) before
    feeding the rest.  ``setup``: an optional async function run first with
    ``(ctx, dut)`` (e.g. weight writes).  ``outputs_per_input``: beats on
    ``o`` per row of ``x`` (a RowByMatrix emits one per column).
    ``progress``: called with a message every ~5% of the samples.
    """
    x = np.asarray(x, dtype=np.int64)
    n = len(x)
    top, rst = _wrap(dut)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    rng = np.random.default_rng(seed)
    in_gaps = (rng.random(n) < stall) * rng.integers(1, 4, n) if stall else np.zeros(n, int)
    ready_pattern = rng.random(64 * 1024) >= stall
    outputs: list[list[int]] = []
    latencies: list[int] = []
    state = {"cycles": 0, "phase": 0, "start": 0}
    budget = max_cycles or 10_000_000

    async def producer(ctx):
        if setup is not None:
            await setup(ctx, dut)
        state["phase"] = 1
        for t in range(n):
            if reset_after is not None and t == reset_after:
                while len(outputs) < reset_after * outputs_per_input:
                    await ctx.tick()
                ctx.set(rst, 1)
                await ctx.tick()
                ctx.set(rst, 0)
            for _ in range(int(in_gaps[t])):
                await ctx.tick()
            for j, v in enumerate(x[t]):
                ctx.set(dut.i.payload[j], int(v))
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        k = 0
        while state["phase"] == 0:
            await ctx.tick()
        while len(outputs) < n * outputs_per_input:
            ready = bool(ready_pattern[k % len(ready_pattern)])
            k += 1
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload, i_valid, i_ready = await ctx.tick().sample(
                dut.o.valid, dut.o.payload, dut.i.valid, dut.i.ready)
            if i_valid and i_ready:
                state["start"] = state["cycles"]
            state["cycles"] += 1
            if state["cycles"] > budget:
                raise RuntimeError(f"simulation exceeded {budget} cycles: the design hangs")
            if valid and ready:
                outputs.append([int(payload)] if isinstance(payload, int) else [int(v) for v in payload])
                if progress is not None and len(outputs) % max(1, n * outputs_per_input // 20) == 0:
                    progress(f"rtl/pysim: {len(outputs) // outputs_per_input:,}/{n:,} samples")
                if outputs_per_input == 1:
                    latencies.append(state["cycles"] - 1 - state["start"])

    sim.add_testbench(producer)
    sim.add_testbench(consumer, background=False)
    ctx = sim.write_vcd(vcd) if vcd else contextlib.nullcontext()
    with ctx:
        sim.run()
    out = np.array(outputs, dtype=np.int64).reshape(n * outputs_per_input, -1)
    return SimResult(out, state["cycles"], latencies)


def measure_latency(dut, x: np.ndarray) -> list[int]:
    """Cycles from each input handshake to the matching ``o.valid``, one sample at a time, ready always high."""
    x = np.asarray(x, dtype=np.int64)
    top, _ = _wrap(dut)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    lat: list[int] = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        for vec in x:
            for j, v in enumerate(vec):
                ctx.set(dut.i.payload[j], int(v))
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            cycles = 0
            while True:
                cycles += 1
                _, _, valid = await ctx.tick().sample(dut.o.valid)
                if valid:
                    break
                if cycles > 1_000_000:
                    raise RuntimeError("no output")
            lat.append(cycles)

    sim.add_testbench(tb)
    sim.run()
    return lat


@dataclass
class PipelineTiming:
    """Cycle numbers of every input handshake and every output, inputs offered back to back."""

    output: np.ndarray
    accepted: list[int]
    emitted: list[int]

    @property
    def intervals(self) -> list[int]:
        return [b - a for a, b in zip(self.accepted, self.accepted[1:])]

    @property
    def latencies(self) -> list[int]:
        return [e - a for a, e in zip(self.accepted, self.emitted)]


def measure_pipeline(dut, x: np.ndarray, *, setup=None, vcd: str | None = None, progress=None) -> PipelineTiming:
    """Offer every row of ``x`` as early as ``dut`` takes it (``o`` always ready); time each handshake.

    A latency is the cycles from an input handshake to its output's first
    ``o.valid`` cycle, as :func:`measure_latency` counts them.  ``vcd``: write a
    waveform trace; ``progress``: called with a message every ~5% of the samples.
    """
    x = np.asarray(x, dtype=np.int64)
    top, _ = _wrap(dut)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    accepted: list[int] = []
    emitted: list[int] = []
    outputs: list[list[int]] = []

    async def tb(ctx):
        if setup is not None:
            await setup(ctx, dut)
        ctx.set(dut.o.ready, 1)
        cycle, t = 0, 0
        while len(outputs) < len(x):
            if t < len(x):
                for j, v in enumerate(x[t]):
                    ctx.set(dut.i.payload[j], int(v))
            ctx.set(dut.i.valid, int(t < len(x)))
            _, _, i_ready, o_valid, payload = await ctx.tick().sample(dut.i.ready, dut.o.valid, dut.o.payload)
            if t < len(x) and i_ready:
                accepted.append(cycle)
                t += 1
            if o_valid:
                emitted.append(cycle)
                outputs.append([int(v) for v in payload])
                if progress is not None and len(outputs) % max(1, len(x) // 20) == 0:
                    progress(f"rtl/pysim: {len(outputs):,}/{len(x):,} samples")
            cycle += 1
            if cycle > 10_000_000:
                raise RuntimeError("no output: the design hangs")

    sim.add_testbench(tb)
    with sim.write_vcd(vcd) if vcd else contextlib.nullcontext():
        sim.run()
    return PipelineTiming(np.array(outputs, dtype=np.int64).reshape(len(x), -1), accepted, emitted)
