"""A tap vector against a weight matrix in block RAM: ``acc[o] = sum_t x[t] * W[t, o] + (b[o] << frac)``.

Lane ``j`` owns the taps ``t = s*lanes + j``.  One weight store
(:class:`.store.WeightStore`) holds the weights of all lanes: the word at
address ``o*S + s`` (``S = ceil(T / lanes)`` steps per row) is the array of
``W[s*lanes + j, o]`` over the lanes, so every cycle one read gives each lane
its weight, packed two 16-bit weights per 36-bit DP16KD word instead of a
block per lane; runtime writes change one element of a word.  The taps sit in
a rotating register (padded with zeros to ``S*lanes``): lane ``j`` always
looks at slot ``j`` and the register rotates by ``lanes`` per beat, so no wide
multiplexer selects the operands.  With ``banks=2`` the store (and the bias
memory) holds two copies; reads use the ``bank`` input, runtime writes go
wherever ``wr.bank`` says.

Runtime write addresses are the layer-local addresses of
:mod:`nnhdl.hdl.weights` (weights in model order, then biases); a 3-stage
pipeline turns them into (lane, row, step) with constant divisions made of
comparators and subtractors (no multiplier).
"""

from __future__ import annotations

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..fixedpoint import QFormat, accumulator_width, po2_encode as po2_encode_np
from .arith import bits_for, const_mul, po2_encode, po2_layout
from .bram import ram_style
from .fanout import LOADS_PER_REPLICA, LOCAL_PREFIX, replicated_register
from .dot import DotProduct, Po2DotProduct
from .mult import FABRIC, Multiplier
from .store import WRITE_STAGES, WeightStore
from .weights import weight_write_signature

__all__ = ["RowByMatrix", "Po2RowByMatrix", "steps", "write_latency"]


def steps(n_terms: int, lanes: int) -> int:
    """Beats per row: ``ceil(n_terms / lanes)``."""
    return -(-n_terms // lanes)


def write_latency(n_in: int, n_out: int, lanes: int) -> int:
    """Cycles from a runtime write on ``wr`` until the memory holds it."""
    return 3 + _div_stages(n_in * n_out - 1, n_out) + _div_stages(n_in - 1, lanes) + WRITE_STAGES


def _div_stages(max_value: int, divisor: int) -> int:
    if divisor == 1:
        return 0
    return -(-bits_for(max(max_value, 0) // divisor) // _WritePipe.STEPS_PER_STAGE)


class _WritePipe:
    """Registers a bundle of values stage by stage (the weight-write decoder's pipeline)."""

    STEPS_PER_STAGE = 2  # restoring-division steps between registers (keeps Fmax up)

    def __init__(self, m: Module) -> None:
        self.m, self.depth, self._n = m, 0, 0

    def reg(self, value, name: str):
        self._n += 1
        sig = Signal(value.shape() if hasattr(value, "shape") else unsigned(len(value)), name=f"{LOCAL_PREFIX}{name}_{self._n}")
        self.m.d.sync += sig.eq(value)
        return sig

    def stage(self, values: dict) -> dict:
        self.depth += 1
        return {k: self.reg(v, f"w{k}") for k, v in values.items()}

    def divmod(self, value, divisor: int, max_value: int, carry: dict):
        """Pipelined ``divmod(value, divisor)``; ``carry`` is updated in place to stay aligned."""
        if divisor == 1:
            return value, Const(0, 1)
        qbits = bits_for(max_value // divisor)
        rem = value.as_unsigned()
        q = Const(0, 0)
        for n, b in enumerate(reversed(range(qbits))):
            step = divisor << b
            take = rem >= step
            rem = Mux(take, rem - step, rem)[:len(value)]
            q = Cat(take, q)
            if (n + 1) % self.STEPS_PER_STAGE == 0 and n + 1 < qbits:
                regs = self.stage({**carry, "_rem": rem, "_q": q})
                rem, q = regs.pop("_rem"), regs.pop("_q")
                carry.update(regs)
        regs = self.stage({**carry, "_rem": rem, "_q": q})
        rem, q = regs.pop("_rem"), regs.pop("_q")
        carry.update(regs)
        return q, rem[:bits_for(divisor - 1)]


def _style(width: int, depth: int, elem: int | None = None) -> dict:
    return {"ram_style": ram_style(width, depth, elem)}


class RowByMatrix(wiring.Component):
    """``o`` emits one exact accumulator per output column, in order, per vector on ``i``."""

    po2 = False
    dot_class = DotProduct

    def __init__(self, fmt: QFormat, weight: np.ndarray, bias: np.ndarray, lanes: int, banks: int = 1,
                 multiplier: Multiplier = FABRIC) -> None:
        weight = np.asarray(weight, dtype=np.int64)
        self.n_in, self.n_out = weight.shape
        if not 1 <= lanes <= self.n_in:
            raise ValueError(f"lanes must be in 1..{self.n_in}, got {lanes}")
        if banks not in (1, 2):
            raise ValueError("banks must be 1 or 2")
        self.fmt, self.lanes, self.banks, self.multiplier = fmt, lanes, banks, multiplier
        self.weight, self.bias = weight, np.asarray(bias, dtype=np.int64)
        if self.po2:
            po2_encode_np(weight, fmt)  # refuses a weight that is not a power of two
        self.steps = steps(self.n_in, lanes)
        self.depth = self.n_out * self.steps
        self.local_params = self.n_in * self.n_out + self.n_out
        self.acc_width = accumulator_width(fmt, self.n_in)
        #: cycles from a write on ``wr`` until the memory holds it
        self.write_latency = write_latency(self.n_in, self.n_out, lanes)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(signed(fmt.width), self.n_in))),
            "o": Out(stream.Signature(signed(self.acc_width))),
            "bank": In(1),
            "wr": In(weight_write_signature(bits_for(self.local_params - 1), fmt.width, bank=True)),
        })

    # -- memory images ------------------------------------------------------
    def _stored(self, m: np.ndarray) -> list[int]:
        """Mantissas -> the integers a lane memory stores."""
        if not self.po2:
            return [int(v) for v in m]
        sign, shift, zero = po2_encode_np(np.asarray(m, dtype=np.int64), self.fmt)
        sb = bits_for(self.fmt.frac)
        return [int(sg < 0) | (int(sh) << 1) | (int(z) << (1 + sb)) for sg, sh, z in zip(sign, shift, zero)]

    def lane_image(self, j: int) -> list[int]:
        vals = np.zeros(self.depth, dtype=np.int64)
        for o in range(self.n_out):
            for s in range(self.steps):
                t = s * self.lanes + j
                if t < self.n_in:
                    vals[o * self.steps + s] = self.weight[t, o]
        return self._stored(vals) * self.banks

    @property
    def weight_shape(self):
        return unsigned(po2_layout(self.fmt).size) if self.po2 else signed(self.fmt.width)

    def elaborate(self, platform):
        m = Module()
        fmt, L, S, D = self.fmt, self.lanes, self.steps, self.depth
        m.submodules.dot = dot = self.dot_class(fmt, self.n_in, L, self.multiplier)

        images = [self.lane_image(j) for j in range(L)]
        m.submodules.wstore = wstore = WeightStore(self.weight_shape, L, D * self.banks,
                                                   [list(word) for word in zip(*images)])
        bmem = Memory(shape=signed(fmt.width), depth=self.n_out * self.banks,
                      init=[int(v) for v in self.bias] * self.banks, attrs=_style(fmt.width, self.n_out * self.banks))
        m.submodules.bmem = bmem

        # -- read side: issue stage (addresses) -> beat stage (dot.i) -----------
        running, issuing = Signal(), Signal()
        a = Signal(range(max(D, 2)))
        s_cnt = Signal(range(max(S, 2)))
        o_cnt = Signal(range(max(self.n_out, 2)))
        rv, r_first, r_last, r_final = Signal(), Signal(), Signal(), Signal()
        adv = Signal()
        m.d.comb += adv.eq(~rv | dot.i.ready)

        bport = bmem.read_port()
        if self.banks == 2:
            m.d.comb += wstore.raddr.eq(a + Mux(self.bank, D, 0))
            m.d.comb += bport.addr.eq(o_cnt + Mux(self.bank, self.n_out, 0))
        else:
            m.d.comb += wstore.raddr.eq(a)
            m.d.comb += bport.addr.eq(o_cnt)
        m.d.comb += [wstore.ren.eq(adv), bport.en.eq(adv)]

        with m.If(adv):
            m.d.sync += rv.eq(issuing)
            with m.If(issuing):
                m.d.sync += [r_first.eq(s_cnt == 0), r_last.eq(s_cnt == S - 1), r_final.eq(a == D - 1)]
                m.d.sync += a.eq(a + 1)
                with m.If(s_cnt == S - 1):
                    m.d.sync += [s_cnt.eq(0), o_cnt.eq(o_cnt + 1)]
                with m.Else():
                    m.d.sync += s_cnt.eq(s_cnt + 1)
                with m.If(a == D - 1):
                    m.d.sync += issuing.eq(0)

        # rotating tap register, padded to S*L slots.  Its thousands of flip-flops are enabled by one register
        # (``tap_ce``, computed a cycle early from ``running`` and the dot product's ``ready_next``) and load
        # or rotate by ``running``, so no logic sits between a flip-flop and their wide fan-out.  While idle the
        # register follows ``i.payload``, so it holds the vector of the handshake when ``running`` rises.
        n_slots = S * L
        taps = [Signal(signed(fmt.width), name=f"tap{n}") for n in range(n_slots)]
        consume, take = Signal(), Signal()
        m.d.comb += [consume.eq(dot.i.valid & dot.i.ready), self.i.ready.eq(~running),
                     take.eq(self.i.valid & self.i.ready)]
        running_next, rv_next = Signal(), Signal()
        m.d.comb += [running_next.eq(take | (running & ~(consume & r_final))),
                     rv_next.eq(Mux(adv, issuing, rv))]
        # tap_ce == ~running | consume and rotate == running, every cycle; one copy of each per group of lane
        # chains (nnhdl.hdl.fanout), so no single flip-flop drives the whole register.  Slots rotate within
        # their chain (slot n feeds lane n mod L), so a chain sits near its lane: a group of chains is local.
        chains = max(1, min(L, LOADS_PER_REPLICA // (S * fmt.width)))  # chains per copy
        copies = -(-L // chains)
        tap_ce = replicated_register(m, ~running_next | (rv_next & dot.ready_next), name="tap_ce", copies=copies,
                                     init=1)
        rotate = replicated_register(m, running_next, name="tap_rotate", copies=copies)
        with m.If(take):
            m.d.sync += [issuing.eq(1), a.eq(0), s_cnt.eq(0), o_cnt.eq(0)]
        m.d.sync += running.eq(running_next)
        for n in range(n_slots):
            k = (n % L) // chains
            with m.If(tap_ce[k]):
                with m.If(rotate[k]):
                    m.d.sync += taps[n].eq(taps[(n + L) % n_slots])
                with m.Else():
                    m.d.sync += taps[n].eq(self.i.payload[n] if n < self.n_in else 0)

        beat = dot.i.payload
        m.d.comb += [dot.i.valid.eq(rv), beat.first.eq(r_first), beat.last.eq(r_last), beat.bias.eq(bport.data)]
        for j in range(L):
            m.d.comb += beat.x[j].eq(taps[j])
            m.d.comb += beat.w[j].eq(wstore.rdata[j])
        wiring.connect(m, dot.o, wiring.flipped(self.o))

        # -- write side: local address -> (lane, memory address) --------------
        # A pipeline without back-pressure: a write accepted in cycle c lands in
        # memory after `write_latency` cycles, whatever follows it.
        n_w = self.n_in * self.n_out
        pipe = _WritePipe(m)
        wa = pipe.reg(self.wr.addr, "wa")
        carry = {"data": pipe.reg(self.wr.data, "wd"), "en": pipe.reg(self.wr.en, "we"),
                 "bank": pipe.reg(self.wr.bank, "wb")}
        carry["is_bias"] = wa >= n_w
        carry["b_off"] = (wa - n_w)[:bits_for(max(self.n_out - 1, 1))]
        carry["code"] = po2_encode(carry["data"], fmt) if self.po2 else carry["data"]
        t, o = pipe.divmod(wa, self.n_out, max(n_w - 1, 0), carry)
        carry["o"] = o
        s_q, j = pipe.divmod(t, L, self.n_in - 1, carry)
        c = pipe.stage({**carry, "lane": j, "addr": const_mul(carry["o"], S) + s_q})
        assert pipe.depth + 2 + WRITE_STAGES == self.write_latency
        wbank_off = Mux(c["bank"], D, 0) if self.banks == 2 else 0
        bbank_off = Mux(c["bank"], self.n_out, 0) if self.banks == 2 else 0
        m.d.comb += [wstore.waddr.eq(c["addr"] + wbank_off), wstore.wlane.eq(c["lane"]),
                     wstore.wdata.eq(c["code"]), wstore.wen.eq(c["en"] & ~c["is_bias"])]
        bw = bmem.write_port()
        m.d.comb += [bw.addr.eq(c["b_off"] + bbank_off), bw.data.eq(c["data"]), bw.en.eq(c["en"] & c["is_bias"])]
        return m


class Po2RowByMatrix(RowByMatrix):
    """Weights stored as (sign, shift, zero) codes and applied by shifters (po2 layers)."""

    po2 = True
    dot_class = Po2DotProduct
