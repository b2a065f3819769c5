"""The network between the pmod's jacks: counts in, counts out, with status counters.

Per sample: calibrated counts (4 counts/mV) → arithmetic shift right by 2 =
Q4.12 mantissas (``nnhdl.audio_io.counts_to_mantissas``) → the network →
shift left by 2 with saturation (``mantissas_to_counts``) → the outputs.
Channel mapping comes from :class:`ChannelMap`; by default audio in 0 is the
core wave, ins 1–2 the embedding CVs, network input 3 (if any) is 0, and
out 0 is the shaped wave (outs 1–3 silent).

The network is pipelined: it takes a new sample every initiation interval
(which must fit in one sample period) while earlier samples are still in
its layers.  An input arriving while the previous one has not yet been taken
is dropped and counted as an *overrun* (never expected in normal operation).

Timing contract (with :mod:`soc.tdm`'s): the answer to input frame f goes out
in frame f + 2 + D, D = :func:`extra_frames` of the latency, the margin and
the cycle budget (D = 0 when the whole latency fits one sample period).
With D = 0 an output is presented as soon as it is ready, ``latency`` cycles
after the network took it.  With D > 0 outputs wait in a small FIFO, each
released once it is ready *and* input frame f + D has arrived: then it can
neither reach the serdes before frame f + D ends (whatever the crossing's
jitter) nor after frame f + 1 + D ends (the latency bound), so D is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from nnhdl.audio_io import COUNT_SHIFT  # counts <-> Q4.12: the same shift as .wav I/O
from nnhdl.errors import NnhdlError
from nnhdl.model import Model

from .registers import EMB_VALUE, Flow, ports
from .tdm import SLOTS, Samples

__all__ = ["ChannelMap", "BoardCore", "COUNT_SHIFT", "extra_frames", "register_members"]

EMBEDDING_INPUTS = (1, 2)
assert len(EMBEDDING_INPUTS) == EMB_VALUE.count, "one embedding override register per embedding input"


def register_members(*, core_only: bool) -> dict[str, wiring.Member]:
    """Signature members of the ports the SoC registers mirror (:data:`soc.registers.REGISTERS`):
    the core's own (``core_only``) or the whole top's."""
    members = {}
    for p, flow in ports(core_only=core_only):
        member = (In if flow is Flow.CONTROL else Out)(signed(p.width) if p.signed else p.width)
        members[p.name] = member if p.count is None else member.array(p.count)
    return members


def extra_frames(latency: int, margin: int, budget: int) -> int:
    """D: frames beyond f+2 the answer to frame f needs, from the network's latency, the cycles
    around it (``margin``) and the cycles per sample (``budget``): the least D >= 0 with
    ``latency + margin <= (D + 1) * budget``."""
    return max(0, -(-(latency + margin) // budget) - 1)


@dataclass(frozen=True)
class ChannelMap:
    """``inputs[j]``: pmod input feeding network input j (None = 0);
    ``outputs[c]``: network output driving pmod output c (None = silent)."""

    inputs: tuple[int | None, ...]
    outputs: tuple[int | None, ...]

    @classmethod
    def default(cls, model: Model) -> "ChannelMap":
        """DESIGN §5: in 0 = core wave, ins 1–2 = embedding, in 3 = 0; out 0 = shaped wave.

        A model may override with ``meta["pmod"] = {"inputs": [...], "outputs": [...]}``.
        """
        pm = model.meta.get("pmod") if isinstance(model.meta, dict) else None
        if isinstance(pm, dict):
            return cls.from_lists(model, pm.get("inputs"), pm.get("outputs"))
        if pm is not None:
            raise NnhdlError(f"meta.pmod: must be an object {{\"inputs\": [...], \"outputs\": [...]}}, got {pm!r}")
        inputs = tuple(j if j < 3 else None for j in range(model.input_dim))
        return cls.from_lists(model, list(inputs), [0, None, None, None])

    @classmethod
    def from_lists(cls, model: Model, inputs: Any, outputs: Any) -> "ChannelMap":
        if not isinstance(inputs, list) or len(inputs) != model.input_dim:
            raise NnhdlError(f"pmod channel map: 'inputs' needs {model.input_dim} entries (one per network input)")
        if not isinstance(outputs, list) or len(outputs) != SLOTS:
            raise NnhdlError(f"pmod channel map: 'outputs' needs {SLOTS} entries (one per pmod output)")
        for j, v in enumerate(inputs):
            if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < SLOTS):
                raise NnhdlError(f"pmod channel map: inputs[{j}] = {v!r} is not a pmod input 0..{SLOTS - 1} or null")
        for c, v in enumerate(outputs):
            if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < model.output_dim):
                raise NnhdlError(f"pmod channel map: outputs[{c}] = {v!r} is not a network output "
                                 f"0..{model.output_dim - 1} or null")
        return cls(tuple(inputs), tuple(outputs))


class BoardCore(wiring.Component):
    """Wraps a network component (``make_network(model)``) for the pmod.

    ``adc``/``dac`` carry counts; ``bypass`` copies inputs to outputs;
    ``emb_override`` replaces the embedding inputs by ``emb_value`` (counts).
    Counters (cleared by ``clear``): ``samples``, ``overruns``,
    ``saturations`` (output samples clipped by the <<2), ``cycles`` (last
    input-to-output cycles of the network) and ``cycles_max``.  ``delay_frames``: D of the
    module's timing contract (:func:`extra_frames`).
    """

    def __init__(self, model: Model, network: wiring.Component, channels: ChannelMap | None = None,
                 delay_frames: int = 0) -> None:
        if delay_frames < 0:
            raise ValueError(f"delay_frames must be >= 0, not {delay_frames}")
        self.model = model
        self.network = network
        self.channels = channels or ChannelMap.default(model)
        self.delay_frames = delay_frames
        ww = network.signature.members["weight_write"]  # same direction as on the network
        super().__init__({
            "adc": In(stream.Signature(Samples(), always_ready=True)),
            "dac": Out(stream.Signature(Samples(), always_ready=True)),
            "weight_write": ww,
            **register_members(core_only=True),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.network = net = self.network
        wiring.connect(m, wiring.flipped(self.weight_write), net.weight_write)
        m.d.comb += [net.bank_swap.eq(self.bank_swap), self.active_bank.eq(net.active_bank)]

        # ---- input side: map channels, counts >> 2, hand to the network
        in_valid = Signal()
        taken = Signal()
        m.d.comb += [net.i.valid.eq(in_valid), taken.eq(net.i.valid & net.i.ready)]
        with m.If(taken):
            m.d.sync += in_valid.eq(0)
        emb = dict(zip(EMBEDDING_INPUTS, self.emb_value))
        with m.If(self.adc.valid):
            m.d.sync += self.samples.eq(self.samples + 1)
            with m.If(self.bypass):
                pass
            with m.Elif(in_valid & ~taken):
                m.d.sync += self.overruns.eq(self.overruns + 1)
            with m.Else():
                m.d.sync += in_valid.eq(1)
                for j, src in enumerate(self.channels.inputs):
                    val = self.adc.payload[src] if src is not None else Const(0, signed(16))
                    if j in emb:
                        val = Mux(self.emb_override, emb[j], val)
                    m.d.sync += net.i.payload[j].eq(val >> COUNT_SHIFT)

        # ---- latency probe: follow one sample through the pipeline (outputs leave in order)
        inflight = Signal(8)     # taken by the network, output not yet out
        measuring = Signal()
        ahead = Signal(8)        # outputs still due before the probed sample's
        counting = Signal(16)
        done = Signal()
        m.d.comb += done.eq(net.o.valid & measuring & (ahead == 0))
        m.d.sync += inflight.eq(inflight + taken - net.o.valid)
        with m.If(measuring):
            m.d.sync += counting.eq(counting + 1)
            with m.If(net.o.valid):
                m.d.sync += ahead.eq(ahead - 1)
        with m.If(done):
            m.d.sync += [measuring.eq(0), self.cycles.eq(counting + 1)]
            with m.If(counting + 1 > self.cycles_max):
                m.d.sync += self.cycles_max.eq(counting + 1)
        with m.Elif(taken & ~measuring):
            m.d.sync += [measuring.eq(1), counting.eq(0), ahead.eq(inflight - net.o.valid)]

        # ---- output side: << 2 with saturation, map channels
        m.d.comb += net.o.ready.eq(1)
        # a mantissa y saturates in int16 counts when y << 2 leaves [-32768, 32767]
        sat_any = []
        out_vals = []
        for c, src in enumerate(self.channels.outputs):
            if src is None:
                out_vals.append(0)
                continue
            y = net.o.payload[src]
            hi, lo = y >= 8192, y < -8192
            sat_any.extend([hi, lo])
            out_vals.append(Mux(hi, 32767, Mux(lo, -32768, (y << COUNT_SHIFT)[:16])))
        saturated = Cat(*sat_any).any() if sat_any else Const(0)
        out_word = Cat(*[Const(v, 16) if isinstance(v, int) else v[:16] for v in out_vals])  # as dac.payload
        release, released = self._delay(m, net, taken, out_word, saturated)
        m.d.sync += self.dac.valid.eq(0)
        with m.If(release):
            with m.If(~self.bypass):  # (a result finishing after bypass was set is dropped)
                m.d.sync += [self.dac.valid.eq(1), self.dac.payload.eq(released[:-1])]
                with m.If(released[-1]):
                    m.d.sync += self.saturations.eq(self.saturations + 1)
        with m.If(self.adc.valid & self.bypass):
            m.d.sync += [self.dac.valid.eq(1), self.dac.payload.eq(self.adc.payload)]
        with m.If(self.clear):
            m.d.sync += [self.samples.eq(0), self.overruns.eq(0), self.saturations.eq(0), self.cycles_max.eq(0)]
        return m

    def _delay(self, m: Module, net, taken, out_word, saturated):
        """``(release, word)``: when an output goes to the serdes, and it (+ its saturation flag on top).

        D = 0: straight from the network.  D > 0: the network's outputs wait in a FIFO, and a FIFO of
        the frame numbers of the inputs taken tells when input frame f + D has arrived.  At most
        D + 2 samples are between being taken and being released (the latency bound).
        """
        d = self.delay_frames
        word = Cat(out_word, saturated)
        if d == 0:
            return net.o.valid, word
        depth = d + 2
        width = (2 * depth).bit_length()
        frame, in_frame = Signal(width), Signal(width)  # input frames seen; the one waiting to be taken
        with m.If(self.adc.valid):
            m.d.sync += frame.eq(frame + 1)
            with m.If(~self.bypass & ~(net.i.valid & ~net.i.ready)):  # as the input register (no overrun)
                m.d.sync += in_frame.eq(frame)
        m.submodules.tags = tags = fifo.SyncFIFO(width=width, depth=depth)
        m.submodules.outs = outs = fifo.SyncFIFO(width=len(word), depth=depth)
        m.d.comb += [tags.w_data.eq(in_frame), tags.w_en.eq(taken),
                     outs.w_data.eq(word), outs.w_en.eq(net.o.valid)]
        due = (frame - tags.r_data)[:width] > d  # input frame f + D has arrived
        release = Signal()
        m.d.comb += [release.eq(outs.r_rdy & tags.r_rdy & due), outs.r_en.eq(release), tags.r_en.eq(release)]
        return release, outs.r_data
