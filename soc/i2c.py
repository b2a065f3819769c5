"""A small open-drain I2C master that executes byte-level commands.

Why our own: the eurorack-pmod bus needs only START / write byte / read byte
/ STOP at 100–400 kHz, no multi-master, no clock stretching.  Each bit is
four phases of ``divider`` cycles, so SCL = f_clk / (4 · divider).
Pins are pull-down enables (``scl_oe``/``sda_oe``) plus the sensed SDA level.
"""


import enum

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["I2COp", "I2CCommand", "I2CMaster"]


class I2COp(enum.IntEnum):
    START = 0  # (repeated) start condition
    WRITE = 1  # send ``data``, then read the target's ACK into ``nack``
    READ = 2  # receive a byte into ``rdata``, then ACK it if ``ack`` else NACK
    STOP = 3


class I2CCommand(data.Struct):
    op: 2
    data: 8
    ack: 1


class I2CMaster(wiring.Component):
    """Runs one :class:`I2CCommand` at a time (``cmd.ready`` when idle)."""

    def __init__(self, divider: int) -> None:
        if divider < 1:
            raise ValueError("divider must be >= 1")
        self.divider = divider
        super().__init__({
            "cmd": In(stream.Signature(I2CCommand)),
            "rdata": Out(8),
            "nack": Out(1),  # last WRITE was not acknowledged
            "scl_oe": Out(1),
            "sda_oe": Out(1),
            "sda_i": In(1, init=1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        op = Signal(I2COp)
        shreg = Signal(9)  # bits to send, MSB first (ones = released)
        rx = Signal(9)
        nbits = Signal(4)  # bits left in this command
        phase = Signal(2)
        tick = Signal(range(self.divider))
        busy = Signal()
        scl_oe = Signal()
        sda_oe = Signal()
        m.d.comb += [self.scl_oe.eq(scl_oe), self.sda_oe.eq(sda_oe), self.cmd.ready.eq(~busy)]

        with m.If(~busy):
            with m.If(self.cmd.valid):
                c = self.cmd.payload
                m.d.sync += [op.eq(c.op), busy.eq(1), phase.eq(0), tick.eq(0)]
                with m.Switch(c.op):
                    with m.Case(I2COp.WRITE):
                        m.d.sync += [shreg.eq(Cat(Const(1, 1), c.data)), nbits.eq(9)]
                    with m.Case(I2COp.READ):
                        m.d.sync += [shreg.eq(Cat(~c.ack, Const(0xFF, 8))), nbits.eq(9)]
                    with m.Default():
                        m.d.sync += nbits.eq(1)
        with m.Else():
            # drive the pins for the current phase
            bit_oe = ~shreg[8]
            with m.Switch(op):
                for case_op, tbl in (
                    (I2COp.START, [(scl_oe, 0), (0, 0), (0, 1), (1, 1)]),
                    (I2COp.STOP, [(1, 1), (0, 1), (0, 0), (0, 0)]),
                ):
                    with m.Case(case_op):
                        with m.Switch(phase):
                            for p, (scl, sda) in enumerate(tbl):
                                with m.Case(p):
                                    m.d.sync += [scl_oe.eq(scl), sda_oe.eq(sda)]
                with m.Default():
                    with m.Switch(phase):
                        for p, scl in enumerate((1, 0, 0, 1)):
                            with m.Case(p):
                                m.d.sync += [scl_oe.eq(scl), sda_oe.eq(bit_oe)]
            m.d.sync += tick.eq(tick + 1)
            with m.If(tick == self.divider - 1):
                m.d.sync += [tick.eq(0), phase.eq(phase + 1)]
                with m.If(phase == 2):
                    m.d.sync += rx.eq(Cat(self.sda_i, rx[:-1]))  # sample while SCL is high
                with m.If(phase == 3):
                    m.d.sync += [shreg.eq(shreg << 1), nbits.eq(nbits - 1)]
                    with m.If(nbits == 1):
                        m.d.sync += busy.eq(0)
                        with m.If(op == I2COp.WRITE):
                            m.d.sync += self.nack.eq(rx[0])
                        with m.If(op == I2COp.READ):
                            m.d.sync += self.rdata.eq(rx[1:9])
        return m
