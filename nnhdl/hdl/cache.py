"""The activation cache (DESIGN §2): a dilated circular buffer in ``lib.memory``.

Each vector accepted on ``i`` is written once; ``o`` then carries the K taps
``x[t-(K-1)d], ..., x[t-d], x[t]`` (oldest first) as one flat vector.  The
buffer has ``(K-1)*d + 1`` entries for any dilation.  Memory contents do not
reset, so a saturating count of samples seen since reset masks taps older than
that to zero: a reset anywhere restores the zero history of the golden model
without a clearing pass.

An entry is stored as ``fold`` words of ``ceil(dim / fold)`` elements (the last
one zero-padded), so a deep, wide cache fills its block RAMs: the memory is
``length * fold`` words deep and ``fold`` times narrower.  The K-1 past taps are
then ``(K-1) * fold`` reads, one per cycle; the newest tap comes from a register.

Timing: accepted in cycle h, the taps are valid in h+(K-1)*fold+3 (h+1 when K == 1).
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .bram import ram_style
from .fanout import LOADS_PER_REPLICA, replicated_register

__all__ = ["ActivationCache", "cache_latency", "cache_period", "cache_word"]


def cache_word(dim: int, fold: int) -> int:
    """Elements per memory word of a cache whose entries are ``fold`` words."""
    return -(-dim // fold)


def cache_latency(kernel_size: int, fold: int = 1) -> int:
    """Cycles from the input handshake to ``o.valid`` (no stalls): one read per word of the K-1 past taps."""
    return 1 if kernel_size == 1 else (kernel_size - 1) * fold + 3


def cache_period(kernel_size: int, fold: int = 1) -> int:
    """Cycles between input handshakes when ``o`` is taken the cycle it is offered."""
    return cache_latency(kernel_size, fold) + 1


class ActivationCache(wiring.Component):
    def __init__(self, width: int, dim: int, kernel_size: int, dilation: int, fold: int = 1) -> None:
        if not 1 <= fold <= dim:
            raise ValueError(f"fold must be in 1..{dim}, got {fold}")
        self.width, self.dim, self.kernel_size, self.dilation = width, dim, kernel_size, dilation
        self.fold = fold
        self.length = (kernel_size - 1) * dilation + 1
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(signed(width), dim))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(width), kernel_size * dim))),
        })

    def elaborate(self, platform):
        m = Module()
        K, d, L, dim, f = self.kernel_size, self.dilation, self.length, self.dim, self.fold
        accept = Signal()
        m.d.comb += accept.eq(self.i.valid & self.i.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        if K == 1:
            m.d.comb += self.i.ready.eq(~self.o.valid)
            with m.If(accept):
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(1)]
            return m

        e = cache_word(dim, f)
        ew = e * self.width                      # bits per memory word
        n_words, n_reads = L * f, (K - 1) * f
        attrs = {"ram_style": ram_style(ew, n_words)}
        m.submodules.mem = mem = Memory(shape=data.ArrayLayout(signed(self.width), e), depth=n_words, init=[],
                                        attrs=attrs)
        wp = mem.write_port()
        rp = mem.read_port()
        ptr = Signal(range(n_words))       # word address of the next entry (a multiple of fold)
        seen = Signal(range(L))            # past samples in the buffer, saturating at L-1
        hist = Signal(range(L))            # `seen` when the current sample arrived
        tbase = Signal(range(n_words))     # word address of the tap being read
        k = Signal(range(max(f, 2)))       # word of that tap
        age = Signal(range(L))             # age of the tap being read (a multiple of d)
        newest = Signal(f * ew)            # the current sample, zero-padded to fold words
        old = Signal(n_reads * ew)         # past taps, oldest word lowest
        busy = Signal()
        c = Signal(range(n_reads + 2))
        d_keep = Signal()
        wptr = Signal(range(n_words))
        wsel, wbusy = Signal(range(max(f, 2))), Signal()   # the word of `newest` being written

        m.d.comb += self.i.ready.eq(~busy & ~self.o.valid)
        if f > 1:
            # the word select is a wide mux (fold words deep) in front of the memory's write data; one register
            # stage after it keeps the mux and the route to the RAM out of one cycle (fpga_qb's critical path).
            # The last word then lands a cycle later, still before the next sample's reads begin.
            w_addr, w_data, w_en = Signal.like(wptr), Signal(ew), Signal()
            m.d.sync += [w_addr.eq(wptr), w_data.eq(newest.word_select(wsel, ew)), w_en.eq(wbusy)]
            m.d.comb += [wp.addr.eq(w_addr), wp.data.eq(w_data), wp.en.eq(w_en)]
        else:
            m.d.comb += [wp.addr.eq(wptr), wp.data.eq(newest), wp.en.eq(wbusy)]
        with m.If(wbusy):
            m.d.sync += [wsel.eq(wsel + 1), wptr.eq(wptr + 1)]
            with m.If(wsel == f - 1):
                m.d.sync += [wsel.eq(0), wbusy.eq(0)]
        m.d.comb += [rp.addr.eq(tbase + k), rp.en.eq(1)]
        step = d * f
        with m.If(accept):
            start = ptr - (K - 1) * step
            m.d.sync += [
                newest.eq(self.i.payload.as_value()), busy.eq(1), c.eq(0), k.eq(0), hist.eq(seen),
                age.eq((K - 1) * d), tbase.eq(Mux(ptr >= (K - 1) * step, start, start + n_words)),
                wptr.eq(ptr), wsel.eq(0), wbusy.eq(1),
                ptr.eq(Mux(ptr == n_words - f, 0, ptr + f)),
                seen.eq(Mux(seen == L - 1, seen, seen + 1)),
            ]
        # words shift in at the top and move towards slot 0 (oldest ends lowest)
        with m.If(busy):
            m.d.sync += c.eq(c + 1)
            m.d.sync += d_keep.eq(age <= hist)
            with m.If((k == f - 1) if f > 1 else 1):
                m.d.sync += [k.eq(0), age.eq(age - d),
                             tbase.eq(Mux(tbase + step >= n_words, tbase + step - n_words, tbase + step))]
            with m.Else():
                m.d.sync += k.eq(k + 1)
            with m.If(c == n_reads + 1):
                m.d.sync += [busy.eq(0), self.o.valid.eq(1)]
        # `old` shifts one word when the word read a cycle ago is valid.  That enable drives every bit of `old`
        # (thousands of flip-flops on a wide layer, the next layer's taps), so it is one flip-flop per group of
        # loads (nnhdl.hdl.fanout) with no logic before the CE pins.  It is 0 whenever the cache is idle.
        copies = -(-(n_reads * ew) // LOADS_PER_REPLICA)
        shift = replicated_register(m, busy & (c < n_reads), name="cache_shift", copies=copies)
        shifted = Signal(n_reads * ew)
        m.d.comb += shifted.eq(old >> ew | Mux(d_keep, rp.data.as_value(), 0) << (ew * (n_reads - 1)))
        chunk = -(-(n_reads * ew) // copies)
        for group, lo in enumerate(range(0, n_reads * ew, chunk)):   # not `k`: that is the tap-word counter
            hi = min(lo + chunk, n_reads * ew)
            with m.If(shift[group]):
                m.d.sync += old[lo:hi].eq(shifted[lo:hi])
        vw = dim * self.width
        m.d.comb += self.o.payload.eq(Cat(*[old[t * f * ew:][:vw] for t in range(K - 1)], newest[:vw]))
        return m
