"""I2C master + pmod init/poll sequence against target models on a simulated bus."""

from amaranth.sim import Simulator

from soc.i2c import I2CCommand, I2CMaster, I2COp
from soc.pmod_init import (AK4619_ADDR, EEPROM_ADDR, JACK_ADDR, LED_ADDR, I2CSequencer, ak4619_registers,
                           pmod_program)
from tests.pmod_models import I2CBus, I2CTarget

# Expected values written straight from DESIGN §6 (not from soc/).
AK4619_48K = [0x37, 0xAE, 0x1C, 0x00, 0x22, 0x22, 0x30, 0x30, 0x30, 0x30, 0x22,
              0x55, 0x00, 0x06, 0x18, 0x18, 0x18, 0x18, 0x04, 0x05, 0x0A]


def make_bus(jack=0x5A):
    eeprom = I2CTarget({0xFA + i: b for i, b in enumerate([0x29, 0x41, 0xDE, 0xAD, 0xBE, 0xEF])} | {0: 0x3C, 1: 0xC3})
    targets = {AK4619_ADDR: I2CTarget(), LED_ADDR: I2CTarget(size=32, pointer_bits=5), JACK_ADDR: I2CTarget({0x00: jack}),
               EEPROM_ADDR: eeprom}
    return I2CBus(targets), targets


def run_sequencer(rate, *, cycles, leds=None, until_polls=None, jack=0x5A, restart_at=None):
    prog = pmod_program(rate, reset_delay=2)
    dut = I2CSequencer(prog, divider=2, delay_shift=2)
    bus, targets = make_bus(jack)
    trace = {"pdn": []}

    async def bench(ctx):
        sda = 1
        for i in range(len(dut.leds)):
            ctx.set(dut.leds[i], (leds or [0] * 16)[i])
        for n in range(cycles):
            ctx.set(dut.sda_i, sda)
            ctx.set(dut.restart, int(restart_at is not None and n == restart_at))
            await ctx.tick()
            _, sda = bus.step(ctx.get(dut.scl_oe), ctx.get(dut.sda_oe))
            trace["pdn"].append(ctx.get(dut.pdn))
            if until_polls is not None and ctx.get(dut.polls) >= until_polls:
                break
        trace["jack"] = ctx.get(dut.jack)
        trace["serial"] = [ctx.get(s) for s in dut.serial]
        trace["nacks"] = ctx.get(dut.nacks)
        trace["ready"] = ctx.get(dut.ready)
        trace["polls"] = ctx.get(dut.polls)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return bus, targets, trace


def test_master_write_read_bytes():
    """Raw master: address + write, then a read, bit-exact on the bus model."""
    dut = I2CMaster(divider=3)
    bus, targets = make_bus()
    cmds = [(I2COp.START, 0, 0), (I2COp.WRITE, LED_ADDR << 1, 0), (I2COp.WRITE, 0x07, 0), (I2COp.WRITE, 0xA5, 0),
            (I2COp.START, 0, 0), (I2COp.WRITE, 0x77 << 1, 0),  # nobody there: NACK
            (I2COp.START, 0, 0), (I2COp.WRITE, (EEPROM_ADDR << 1) | 1, 0), (I2COp.READ, 0, 1), (I2COp.READ, 0, 0),
            (I2COp.STOP, 0, 0)]
    results = []

    async def bench(ctx):
        sda = 1
        for op, byte, ack in cmds:
            ctx.set(dut.cmd.payload, {"op": op, "data": byte, "ack": ack})
            ctx.set(dut.cmd.valid, 1)
            while True:
                ctx.set(dut.sda_i, sda)
                await ctx.tick()
                _, sda = bus.step(ctx.get(dut.scl_oe), ctx.get(dut.sda_oe))
                if ctx.get(dut.cmd.valid) and not ctx.get(dut.cmd.ready):
                    break
            ctx.set(dut.cmd.valid, 0)
            while not ctx.get(dut.cmd.ready):
                ctx.set(dut.sda_i, sda)
                await ctx.tick()
                _, sda = bus.step(ctx.get(dut.scl_oe), ctx.get(dut.sda_oe))
            results.append((ctx.get(dut.nack), ctx.get(dut.rdata)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert targets[LED_ADDR].writes == [(0x07, 0xA5)]
    assert results[3][0] == 0 and results[5][0] == 1  # ACKed vs. NACKed address
    assert ("a", 0x77, 0, False) in bus.log
    # EEPROM pointer was left at 0 (no register write): bytes 0, 1 read back (ACK, then NACK)
    assert results[8][1] == 0x3C and results[9][1] == 0xC3
    assert bus.master_nack == 1
    assert bus.log[-1] == "stop"


def test_init_sequence_48k_and_poll():
    leds = [(17 * i + 3) % 256 for i in range(16)]
    bus, targets, tr = run_sequencer(48000, cycles=200_000, leds=leds, until_polls=2)
    assert tr["polls"] >= 2 and tr["ready"] == 1 and tr["nacks"] == 0
    # codec: every register 0x00..0x14 written once, in order, with DESIGN's values
    assert targets[AK4619_ADDR].writes == list(enumerate(AK4619_48K))
    # PCA9635 init: MODE1, MODE2, 16 PWM, GRPPWM, GRPFREQ, LEDOUT0..3
    led_writes = targets[LED_ADDR].writes
    init = [(0x00, 0x81), (0x01, 0x01)] + [(0x02 + i, 0) for i in range(16)] + \
        [(0x12, 0xFF), (0x13, 0x00), (0x14, 0xAA), (0x15, 0xAA), (0x16, 0xAA), (0x17, 0xAA)]
    assert led_writes[: len(init)] == init
    # each poll writes the 16 LED levels to PWM0..15
    poll = [(0x02 + i, leds[i]) for i in range(16)]
    assert led_writes[len(init): len(init) + 16] == poll
    assert led_writes[len(init) + 16: len(init) + 32] == poll
    # jack detect: polarity register cleared, input port read back
    assert targets[JACK_ADDR].writes == [(0x02, 0x00)]
    assert tr["jack"] == 0x5A
    assert tr["serial"] == [0x29, 0x41, 0xDE, 0xAD, 0xBE, 0xEF]
    # codec held in reset (PDN low) before its registers are written
    assert tr["pdn"][0] == 0 and tr["pdn"][-1] == 1


def test_init_sequence_192k_sets_clock_register():
    bus, targets, tr = run_sequencer(192000, cycles=60_000, until_polls=1)
    expected = list(AK4619_48K)
    expected[0x03] = 0x04
    assert targets[AK4619_ADDR].writes == list(enumerate(expected))
    assert ak4619_registers(192000)[3] == 0x04


def test_restart_reinitialises_codec():
    bus, targets, tr = run_sequencer(48000, cycles=70_000, restart_at=30_000)
    # the codec register block was written twice (after reset and after restart)
    # (30,000 cycles is well into polling: init takes ~13,000 at divider 2)
    assert targets[AK4619_ADDR].writes == list(enumerate(AK4619_48K)) * 2
    assert tr["pdn"][29_990] == 1 and tr["pdn"][30_001] == 0  # reset asserted at once
    assert tr["ready"] == 1 and tr["pdn"][-1] == 1


def test_missing_board_counts_nacks():
    prog = pmod_program(48000, reset_delay=2)
    dut = I2CSequencer(prog, divider=2, delay_shift=2)
    bus = I2CBus({})

    async def bench(ctx):
        sda = 1
        for _ in range(3000):
            ctx.set(dut.sda_i, sda)
            await ctx.tick()
            _, sda = bus.step(ctx.get(dut.scl_oe), ctx.get(dut.sda_oe))
        assert ctx.get(dut.nacks) > 0

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
