"""The eurorack-pmod's I2C life: power-up, register set-up, then polling.

The sequence is a small program (built in Python from DESIGN §6, one list of
instructions per sample rate) executed by :class:`I2CSequencer` on top of
:class:`~soc.i2c.I2CMaster`: codec reset through PDN, AK4619 registers,
PCA9557 polarity, PCA9635 LED driver, a read of the EEPROM serial number, and
then forever: read the jack-detect inputs, write the 16 LED levels.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amaranth import Array, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .i2c import I2CMaster, I2COp
from .registers import SERIAL_BYTES  # manufacturer code, device code, 32-bit serial (0xFA..0xFF)

__all__ = [
    "AK4619_ADDR", "EEPROM_ADDR", "LED_ADDR", "JACK_ADDR", "TOUCH_ADDR",
    "ak4619_registers", "led_driver_registers", "Instr", "Op", "pmod_program", "I2CSequencer",
    "READ_JACK", "READ_SERIAL", "SERIAL_BYTES", "LED_COUNT",
]

AK4619_ADDR = 0x10
EEPROM_ADDR = 0x52
LED_ADDR = 0x05
JACK_ADDR = 0x18
TOUCH_ADDR = 0x37
EEPROM_SERIAL_REG = 0xFA
LED_COUNT = 16
RATES = (48000, 192000)

# Known-good AK4619 registers at 48 kHz, written from 0x00 with auto-increment.
_AK4619_48K = [0x37, 0xAE, 0x1C, 0x00, 0x22, 0x22, 0x30, 0x30, 0x30, 0x30, 0x22,
               0x55, 0x00, 0x06, 0x18, 0x18, 0x18, 0x18, 0x04, 0x05, 0x0A]


def ak4619_registers(sample_rate: int) -> list[int]:
    """Register values 0x00..0x14 for MCLK = 256·fs at ``sample_rate``."""
    if sample_rate not in RATES:
        raise ValueError(f"sample rate {sample_rate} not supported by the pmod driver; use one of {RATES}")
    regs = list(_AK4619_48K)
    if sample_rate == 192000:
        regs[0x03] = 0x04  # system clock setting: 192 kHz, MCLK = 256 fs
    return regs


def led_driver_registers() -> list[int]:
    """PCA9635 registers 0x00..0x17: MODE1, MODE2, PWM0..15, GRPPWM, GRPFREQ, LEDOUT0..3."""
    return [0x81, 0x01] + [0] * LED_COUNT + [0xFF, 0x00] + [0xAA] * 4


class Op(enum.IntEnum):
    START = 0
    STOP = 1
    WRITE = 2  # arg: byte
    WRITE_VAR = 3  # arg: index into ``leds``
    READ = 4  # arg: bit 8 = ACK after the byte, bits 0..7 = destination
    PDN = 5  # arg: level of the codec's PDN pin (0 = powered down/reset)
    DELAY = 6  # arg: wait arg · 2**delay_shift cycles
    DONE = 7  # initialisation finished (sets ``ready``)
    JUMP = 8  # arg: instruction address


READ_JACK = 0
READ_SERIAL = 1  # destinations 1..6


@dataclass(frozen=True)
class Instr:
    op: Op
    arg: int = 0

    def encode(self) -> int:
        return (int(self.op) << 9) | self.arg


def _write(addr: int, reg: int, values: list[int]) -> list[Instr]:
    return [Instr(Op.START), Instr(Op.WRITE, addr << 1), Instr(Op.WRITE, reg)] + \
        [Instr(Op.WRITE, v) for v in values] + [Instr(Op.STOP)]


def _read(addr: int, reg: int, dests: list[int]) -> list[Instr]:
    seq = [Instr(Op.START), Instr(Op.WRITE, addr << 1), Instr(Op.WRITE, reg),
           Instr(Op.START), Instr(Op.WRITE, (addr << 1) | 1)]
    for n, d in enumerate(dests):
        ack = n < len(dests) - 1
        seq.append(Instr(Op.READ, (ack << 8) | d))
    return seq + [Instr(Op.STOP)]


def pmod_program(sample_rate: int, *, reset_delay: int = 255) -> list[Instr]:
    """The whole init + poll program for ``sample_rate``."""
    prog = [Instr(Op.PDN, 0), Instr(Op.DELAY, reset_delay), Instr(Op.PDN, 1), Instr(Op.DELAY, reset_delay)]
    prog += _write(AK4619_ADDR, 0x00, ak4619_registers(sample_rate))
    prog += _write(JACK_ADDR, 0x02, [0x00])  # PCA9557: no polarity inversion on any input
    prog += _write(LED_ADDR, 0x80, led_driver_registers())  # 0x80: auto-increment from MODE1
    prog += _read(EEPROM_ADDR, EEPROM_SERIAL_REG, [READ_SERIAL + i for i in range(SERIAL_BYTES)])
    prog.append(Instr(Op.DONE))
    poll = len(prog)
    prog += _read(JACK_ADDR, 0x00, [READ_JACK])
    prog += [Instr(Op.START), Instr(Op.WRITE, LED_ADDR << 1), Instr(Op.WRITE, 0x82)]  # PWM0, auto-increment
    prog += [Instr(Op.WRITE_VAR, i) for i in range(LED_COUNT)] + [Instr(Op.STOP)]
    prog.append(Instr(Op.JUMP, poll))
    return prog


class I2CSequencer(wiring.Component):
    """Executes :func:`pmod_program` forever; ``restart`` re-runs it from the codec reset.

    ``jack`` is the PCA9557 input byte of the last poll, ``serial`` the
    EEPROM bytes, ``nacks`` counts writes nobody acknowledged (a missing or
    unpowered board), ``polls`` counts completed poll rounds.
    """

    def __init__(self, program: list[Instr], *, divider: int, delay_shift: int = 10) -> None:
        self.program = program
        self.divider = divider
        self.delay_shift = delay_shift
        super().__init__({
            "leds": In(8).array(LED_COUNT),
            "restart": In(1),
            "ready": Out(1),
            "pdn": Out(1),
            "jack": Out(8, init=0xFF),  # all plugged until the first poll answers (ready comes first)
            "serial": Out(8).array(SERIAL_BYTES),
            "nacks": Out(16),
            "polls": Out(16),
            "scl_oe": Out(1),
            "sda_oe": Out(1),
            "sda_i": In(1, init=1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.master = master = I2CMaster(self.divider)
        m.d.comb += [self.scl_oe.eq(master.scl_oe), self.sda_oe.eq(master.sda_oe), master.sda_i.eq(self.sda_i)]
        rom = Array(Const(i.encode(), 13) for i in self.program)
        pc = Signal(range(len(self.program)))
        word = Signal(13)
        m.d.comb += word.eq(rom[pc])
        op, arg = word[9:13], word[:9]
        delay = Signal(9 + self.delay_shift)
        pending = Signal()  # a READ's byte is waiting to be stored
        dest = Signal(8)
        leds = Array(self.leds)
        dests = Array([self.jack] + list(self.serial))

        with m.If(pending & master.cmd.ready):
            m.d.sync += pending.eq(0)
            with m.Switch(dest):
                for n, sig in enumerate(dests):
                    with m.Case(n):
                        m.d.sync += sig.eq(master.rdata)
        wrote = Signal()  # a WRITE's ACK is waiting to be counted
        with m.If(wrote & master.cmd.ready):
            m.d.sync += wrote.eq(0)
            with m.If(master.nack):
                m.d.sync += self.nacks.eq(self.nacks + 1)

        step = Signal()
        m.d.comb += step.eq(0)
        with m.If(self.restart):
            m.d.sync += [pc.eq(0), self.ready.eq(0), delay.eq(0), self.pdn.eq(0)]
        with m.Elif(master.cmd.ready & ~pending & ~wrote):
            cmd = master.cmd.payload
            with m.Switch(op):
                with m.Case(Op.START):
                    m.d.comb += [cmd.op.eq(I2COp.START), master.cmd.valid.eq(1)]
                with m.Case(Op.STOP):
                    m.d.comb += [cmd.op.eq(I2COp.STOP), master.cmd.valid.eq(1)]
                with m.Case(Op.WRITE):
                    m.d.comb += [cmd.op.eq(I2COp.WRITE), cmd.data.eq(arg[:8]), master.cmd.valid.eq(1)]
                    m.d.sync += wrote.eq(1)
                with m.Case(Op.WRITE_VAR):
                    m.d.comb += [cmd.op.eq(I2COp.WRITE), cmd.data.eq(leds[arg[:4]]), master.cmd.valid.eq(1)]
                    m.d.sync += wrote.eq(1)
                with m.Case(Op.READ):
                    m.d.comb += [cmd.op.eq(I2COp.READ), cmd.ack.eq(arg[8]), master.cmd.valid.eq(1)]
                    m.d.sync += [pending.eq(1), dest.eq(arg[:8])]
                with m.Case(Op.PDN):
                    m.d.sync += self.pdn.eq(arg[0])
                    m.d.comb += step.eq(1)
                with m.Case(Op.DELAY):
                    m.d.sync += delay.eq(delay + 1)
                    with m.If(delay == (arg << self.delay_shift)):
                        m.d.sync += delay.eq(0)
                        m.d.comb += step.eq(1)
                with m.Case(Op.DONE):
                    m.d.sync += self.ready.eq(1)
                    m.d.comb += step.eq(1)
                with m.Case(Op.JUMP):
                    m.d.sync += [pc.eq(arg), self.polls.eq(self.polls + 1)]
            with m.If(master.cmd.valid | step):
                m.d.sync += pc.eq(pc + 1)
        return m
