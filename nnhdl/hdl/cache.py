"""The activation cache (DESIGN §2): a dilated circular buffer in ``lib.memory``.

Each vector accepted on ``i`` is written once; ``o`` then carries the K taps
``x[t-(K-1)d], ..., x[t-d], x[t]`` (oldest first) as one flat vector.  The
buffer has ``(K-1)*d + 1`` entries for any dilation.  Memory contents do not
reset, so a saturating count of samples seen since reset masks taps older than
that to zero: a reset anywhere restores the zero history of the golden model
without a clearing pass.

Timing: accepted in cycle h, the taps are valid in h+K+2 (h+1 when K == 1).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["ActivationCache", "cache_latency", "cache_period"]


def cache_latency(kernel_size: int) -> int:
    """Cycles from the input handshake to ``o.valid`` (no stalls)."""
    return 1 if kernel_size == 1 else kernel_size + 2


def cache_period(kernel_size: int) -> int:
    """Cycles between input handshakes when ``o`` is taken the cycle it is offered."""
    return cache_latency(kernel_size) + 1


class ActivationCache(wiring.Component):
    def __init__(self, width: int, dim: int, kernel_size: int, dilation: int) -> None:
        self.width, self.dim, self.kernel_size, self.dilation = width, dim, kernel_size, dilation
        self.length = (kernel_size - 1) * dilation + 1
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(signed(width), dim))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(width), kernel_size * dim))),
        })

    def elaborate(self, platform):
        m = Module()
        K, d, L, dim = self.kernel_size, self.dilation, self.length, self.dim
        accept = Signal()
        m.d.comb += accept.eq(self.i.valid & self.i.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        if K == 1:
            m.d.comb += self.i.ready.eq(~self.o.valid)
            with m.If(accept):
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(1)]
            return m

        vec = data.ArrayLayout(signed(self.width), dim)
        m.submodules.mem = mem = Memory(shape=vec, depth=L, init=[])
        wp = mem.write_port()
        rp = mem.read_port()
        ptr = Signal(range(L))
        seen = Signal(range(L))       # past samples in the buffer, saturating at L-1
        hist = Signal(range(L))       # `seen` when the current sample arrived
        raddr = Signal(range(L))
        age = Signal(range(L))        # age of the tap being read (a multiple of d)
        newest = Signal(vec)
        busy = Signal()
        c = Signal(range(K + 1))
        d_valid, d_keep = Signal(), Signal()

        m.d.comb += self.i.ready.eq(~busy & ~self.o.valid)
        m.d.comb += [wp.addr.eq(ptr), wp.data.eq(self.i.payload), wp.en.eq(accept)]
        m.d.comb += [rp.addr.eq(raddr), rp.en.eq(1)]
        with m.If(accept):
            start = ptr - (K - 1) * d
            m.d.sync += [
                newest.eq(self.i.payload), busy.eq(1), c.eq(0), hist.eq(seen), age.eq((K - 1) * d),
                raddr.eq(Mux(ptr >= (K - 1) * d, start, start + L)),
                ptr.eq(Mux(ptr == L - 1, 0, ptr + 1)),
                seen.eq(Mux(seen == L - 1, seen, seen + 1)),
            ]
        # taps shift in at the top and move towards slot 0 (oldest ends lowest)
        flat = self.o.payload.as_value()
        vw = self.width * dim
        shift_in = Signal(vw)
        with m.If(busy):
            m.d.sync += c.eq(c + 1)
            m.d.sync += [d_valid.eq(c < K - 1), d_keep.eq(age <= hist)]
            m.d.sync += [age.eq(age - d), raddr.eq(Mux(raddr + d >= L, raddr + d - L, raddr + d))]
            with m.If(d_valid):
                m.d.comb += shift_in.eq(Mux(d_keep, rp.data.as_value(), 0))
                m.d.sync += flat.eq(flat >> vw | shift_in << (vw * (K - 1)))
            with m.If(c == K):
                m.d.sync += [flat.eq(flat >> vw | newest.as_value() << (vw * (K - 1))),
                             busy.eq(0), self.o.valid.eq(1)]
        return m
