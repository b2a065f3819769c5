"""A layer's weights in block RAM, packed to the DP16KD bound: ``depth`` words of ``n`` elements.

The lanes' weights at one step form a word, read whole every cycle.  Elements
go in *columns* of as many as fit a 36-bit DP16KD word in whole 9-bit byte
lanes (two 16-bit weights, four 6-bit po2 codes), so a runtime write changes
one element through the byte enables.

Shallow (``depth <= 512``): one ``lib.memory`` holds everything; yosys maps it
one block per column.  Deeper, one memory per column would fill its blocks only
``depth / 1024`` of the way (640 words: 62%), so the store is *skewed*: the
columns are laid end to end, ``cols * depth`` words in 512-word pieces, and
piece ``b`` holds column words ``[512b, 512b + 512)``.  Because a piece is no
deeper than a column, at any address it serves at most one column, so all
pieces read at once give every column its word; each column takes its word from
the piece its stretch is in (a registered select).  ``ceil(cols * depth / 512)``
blocks: the capacity bound of the packing.

Timing: reads like a ``lib.memory`` read port (data the cycle after ``ren``,
held otherwise); a write lands :data:`WRITE_STAGES` + 1 cycles after it is
presented.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Const, Module, Mux, Shape, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .arith import bits_for, const_mul
from .bram import dp16kd, ram_style, shallow

__all__ = ["StoreLayout", "store_layout", "WeightStore", "WRITE_STAGES"]

#: 36-bit DP16KD words (512 deep): the block a skewed store is cut into
PIECE_DEPTH = 512
PIECE_BITS = 36
#: registers between ``w*`` and the memories' write ports
WRITE_STAGES = 2


@dataclass(frozen=True)
class StoreLayout:
    n: int          # elements per word
    elem: int       # bits per element
    depth: int      # words
    per_col: int    # elements per column (a power of two)
    skewed: bool

    @property
    def cols(self) -> int:
        return -(-self.n // self.per_col)

    def pieces(self) -> list[int]:
        """Depth of each memory (one memory of ``depth`` words when not skewed)."""
        if not self.skewed:
            return [self.depth]
        total = self.cols * self.depth
        return [min(PIECE_DEPTH, total - b) for b in range(0, total, PIECE_DEPTH)]

    def memories(self) -> list[tuple[int, int, int]]:
        """``(width, depth, element bits)`` of each memory."""
        if not self.skewed:
            return [(self.n * self.elem, self.depth, self.elem)]
        return [(self.per_col * self.elem, d, self.elem) for d in self.pieces()]

    @property
    def dp16kd(self) -> int:
        return sum(dp16kd(*m) for m in self.memories())


def store_layout(n: int, elem: int, depth: int) -> StoreLayout:
    """The layout with the fewest DP16KD (plain on a tie, unless yosys might split the plain memory across
    modes: then its count would not be exact)."""
    lanes9 = -(-elem // 9)
    per_col = 1 << (max(1, (PIECE_BITS // 9) // lanes9).bit_length() - 1) if lanes9 <= 4 else 1
    plain = StoreLayout(n, elem, depth, per_col, False)
    if depth < PIECE_DEPTH or elem > PIECE_BITS:
        return plain
    skewed = StoreLayout(n, elem, depth, per_col, True)
    if not shallow(*plain.memories()[0]):
        return skewed
    return skewed if skewed.dp16kd < plain.dp16kd else plain


class WeightStore(wiring.Component):
    """Members: ``raddr``/``ren``/``rdata`` (a synchronous read port of whole words),
    ``wlane``/``waddr``/``wdata``/``wen`` (write one element)."""

    def __init__(self, shape, n: int, depth: int, init: list[list[int]]) -> None:
        self.shape, self.n, self.depth = shape, n, depth
        self.layout = store_layout(n, Shape.cast(shape).width, depth)
        self._init = init  # init[word][element]
        super().__init__({
            "raddr": In(range(max(depth, 2))), "ren": In(1), "rdata": Out(data.ArrayLayout(shape, n)),
            "wlane": In(range(max(n, 2))), "waddr": In(range(max(depth, 2))), "wdata": In(shape), "wen": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        lay, n, N = self.layout, self.n, self.depth

        # write pipeline: WRITE_STAGES registers, the skewed address computed on the way
        sh = lay.per_col.bit_length() - 1
        col = self.wlane >> sh
        k = self.wlane[:sh] if sh else Const(0, 1)
        s1 = {"addr": self.waddr, "cn": const_mul(col, N) if lay.skewed else Const(0, 1), "k": k,
              "lane": self.wlane, "data": self.wdata, "en": self.wen}
        r1 = {key: Signal(v.shape(), name=f"ws1_{key}") for key, v in s1.items()}
        m.d.sync += [r1[key].eq(v) for key, v in s1.items()]
        linear = Signal(bits_for(lay.cols * N - 1), name="ws2_linear")
        r2 = {key: Signal(r1[key].shape(), name=f"ws2_{key}") for key in ("k", "lane", "data", "en")}
        m.d.sync += [r2[key].eq(r1[key]) for key in r2]
        m.d.sync += linear.eq(r1["cn"] + r1["addr"])
        assert WRITE_STAGES == 2

        if not lay.skewed:
            mem = Memory(shape=data.ArrayLayout(self.shape, n), depth=N, init=self._init,
                         attrs={"ram_style": ram_style(*lay.memories()[0])})
            m.submodules.mem = mem
            rp, wp = mem.read_port(), mem.write_port(granularity=1)
            m.d.comb += [rp.addr.eq(self.raddr), rp.en.eq(self.ren), self.rdata.eq(rp.data)]
            m.d.comb += [wp.addr.eq(linear), wp.data.eq(Cat([r2["data"]] * n)),
                         wp.en.eq(Cat(r2["en"] & (r2["lane"] == j) for j in range(n)))]
            return m

        P, pc = PIECE_DEPTH, lay.per_col
        words = []  # linear word index -> element values (columns end to end)
        for c in range(lay.cols):
            for t in range(N):
                words.append([self._init[t][c * pc + e] if c * pc + e < n else 0 for e in range(pc)])
        ports = []
        for b, d in enumerate(lay.pieces()):
            mem = Memory(shape=data.ArrayLayout(self.shape, pc), depth=d, init=words[b * P:b * P + d],
                         attrs={"ram_style": ram_style(pc * Shape.cast(self.shape).width, d,
                                                        Shape.cast(self.shape).width)})
            m.submodules[f"piece{b}"] = mem
            rp, wp = mem.read_port(), mem.write_port(granularity=1)
            t0 = (b * P) % N  # the column address where the piece starts
            m.d.comb += [rp.addr.eq(Mux(self.raddr >= t0, self.raddr - t0, self.raddr + (N - t0))),
                         rp.en.eq(self.ren)]
            m.d.comb += [wp.addr.eq(linear[:bits_for(P - 1)]), wp.data.eq(Cat([r2["data"]] * pc)),
                         wp.en.eq(Cat(r2["en"] & (linear >> bits_for(P - 1) == b) & (r2["k"] == e)
                                      for e in range(pc)))]
            ports.append(rp)
        for c in range(lay.cols):
            first, last = (c * N) // P, (c * N + N - 1) // P
            cand = list(range(first, last + 1))
            sel = Signal(range(max(len(cand), 2)), name=f"sel{c}")
            with m.If(self.ren):  # the piece this column's word comes from, aligned with the read data
                m.d.sync += sel.eq(sum((self.raddr >= (b * P - c * N)).as_unsigned() for b in cand[1:])
                                   if len(cand) > 1 else 0)
            word = ports[cand[-1]].data.as_value()
            for i in reversed(range(len(cand) - 1)):
                word = Mux(sel == i, ports[cand[i]].data.as_value(), word)
            ew = Shape.cast(self.shape).width
            for e in range(pc):
                if c * pc + e < n:
                    m.d.comb += self.rdata[c * pc + e].eq(word[e * ew:(e + 1) * ew])
        return m
