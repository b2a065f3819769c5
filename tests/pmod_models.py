"""Behavioural models of the eurorack-pmod's chips, for amaranth.sim tests.

Written from the datasheets' protocol descriptions, independently of soc/:
they watch the pins the FPGA drives and answer like the chips would.
"""

from __future__ import annotations

import numpy as np

FRAME_BITS = 128


def to_signed16(v: int) -> int:
    return v - 0x10000 if v & 0x8000 else v


class CodecModel:
    """AK4619 in TDM128 I2S-compatible mode, as the clock slave.

    Detects a frame at each LRCK falling edge (seen at a BICK falling edge),
    shifts ``adc_frames`` out on SDOUT MSB first one BICK after each slot
    boundary, and records the top 16 bits of every slot on SDIN into
    ``dac_frames`` (one list of 4 ints per complete frame).
    """

    def __init__(self, adc_frames):
        self.adc_frames = [list(f) for f in adc_frames]
        self.dac_frames: list[list[int]] = []
        self.frame = -1  # index of the frame being transferred
        self.bit = None
        self.rx = [0] * FRAME_BITS
        self.prev_bick = 0
        self.prev_lrck = 0
        self.sdout = 0

    def _adc_bit(self, b: int) -> int:
        if self.frame < 0 or self.frame >= len(self.adc_frames):
            return 0
        pos = (b - 1) % FRAME_BITS
        slot, k = divmod(pos, 32)
        if b == 0 or k >= 16:
            return 0
        return (self.adc_frames[self.frame][slot] & 0xFFFF) >> (15 - k) & 1

    def step(self, bick: int, lrck: int, sdin: int) -> int:
        """Call once per MCLK cycle with the pin values; returns SDOUT."""
        if self.prev_bick and not bick:  # falling edge: advance, drive
            if self.prev_lrck and not lrck:
                if self.bit is not None and self.frame >= 0:
                    self._finish_frame()
                self.frame += 1
                self.bit = 0
            elif self.bit is not None:
                self.bit += 1
            if self.bit is not None:
                self.sdout = self._adc_bit(self.bit)
            self.prev_lrck = lrck
        elif not self.prev_bick and bick and self.bit is not None and self.bit < FRAME_BITS:
            self.rx[self.bit] = sdin  # rising edge: sample
        self.prev_bick = bick
        return self.sdout

    def _finish_frame(self) -> None:
        words = []
        for s in range(4):
            v = 0
            for k in range(16):
                v = (v << 1) | self.rx[1 + 32 * s + k]
            words.append(to_signed16(v))
        self.dac_frames.append(words)
        self.rx = [0] * FRAME_BITS


class I2CBus:
    """Open-drain bus with several target models; records every transaction.

    ``step(scl_oe, sda_oe)`` takes the FPGA's pull-down enables once per
    cycle and returns the resolved (scl, sda) levels (wired-AND with the
    targets' own SDA pull-downs).
    """

    def __init__(self, targets: dict[int, "I2CTarget"]):
        self.targets = targets
        self.scl = self.sda = 1
        self.state = "idle"
        self.byte = 0
        self.nbits = 0
        self.target = None
        self.reading = False
        self.drive_sda = 1  # what targets drive (1 = released)
        self.log: list[tuple] = []  # ("start"|"stop"|("w", addr, byte)|("r", addr, byte))
        self.first = True

    def step(self, scl_oe: int, sda_oe: int) -> tuple[int, int]:
        scl = 0 if scl_oe else 1
        sda = 0 if (sda_oe or not self.drive_sda) else 1
        if scl and self.scl and sda != self.sda:  # SDA changes while SCL high
            if not sda:
                self._start()
            else:
                self._stop()
        elif scl and not self.scl:
            self._rise(sda)
        elif not scl and self.scl:
            self._fall()
        self.scl, self.sda = scl, sda
        return scl, 0 if (sda_oe or not self.drive_sda) else 1

    def _start(self) -> None:
        if self.target is not None and self.state != "idle":
            self.target.restart()
        self.log.append("start")
        self.state, self.byte, self.nbits, self.target, self.drive_sda = "addr", 0, 0, None, 1

    def _stop(self) -> None:
        self.log.append("stop")
        if self.target is not None:
            self.target.stop()
        self.state, self.target, self.drive_sda = "idle", None, 1

    def _rise(self, sda: int) -> None:
        if self.state in ("addr", "write"):
            self.byte = (self.byte << 1) | sda
            self.nbits += 1
        elif self.state == "master_ack":
            self.master_nack = sda
        elif self.state == "read":
            self.nbits += 1

    def _fall(self) -> None:
        st = self.state
        if st in ("addr", "write") and self.nbits == 8:
            if st == "addr":
                addr, rd = self.byte >> 1, self.byte & 1
                self.target = self.targets.get(addr)
                self.reading = bool(rd)
                if self.target is not None:
                    self.target.address(rd)
                self.log.append(("a", addr, rd, self.target is not None))
            else:
                self.log.append(("w", self.target_addr(), self.byte))
                self.target.write(self.byte)
            self.drive_sda = 0 if self.target is not None else 1
            self.state = "ack"
        elif st == "ack":
            self.drive_sda = 1
            if self.target is None:
                self.state = "idle"
            elif self.reading:
                self.out = self.target.read()
                self.log.append(("r", self.target_addr(), self.out))
                self.state, self.nbits = "read", 0
                self.drive_sda = (self.out >> 7) & 1
            else:
                self.state, self.byte, self.nbits = "write", 0, 0
        elif st == "read":
            if self.nbits == 8:
                self.drive_sda, self.state = 1, "master_ack"
            else:
                self.drive_sda = (self.out >> (7 - self.nbits)) & 1
        elif st == "master_ack":
            if self.master_nack:
                self.state = "done"
            else:
                self.out = self.target.read()
                self.log.append(("r", self.target_addr(), self.out))
                self.state, self.nbits = "read", 0
                self.drive_sda = (self.out >> 7) & 1

    def target_addr(self) -> int:
        return next(a for a, t in self.targets.items() if t is self.target)


class I2CTarget:
    """Register-file target: first written byte sets the register pointer,
    later bytes write registers with auto-increment; reads auto-increment.
    ``pointer_bits=5`` models the PCA9635, whose pointer's top 3 bits are
    auto-increment flags rather than address."""

    def __init__(self, regs: dict[int, int] | None = None, size: int = 256, pointer_bits: int = 8):
        self.pointer_mask = (1 << pointer_bits) - 1
        self.regs = np.zeros(size, dtype=np.int64)
        for k, v in (regs or {}).items():
            self.regs[k] = v
        self.ptr = 0
        self.first = True
        self.writes: list[tuple[int, int]] = []  # (register, value) in order

    def address(self, rd: int) -> None:
        self.first = not rd

    def restart(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def write(self, byte: int) -> None:
        if self.first:
            self.ptr, self.first = byte & self.pointer_mask, False
        else:
            self.regs[self.ptr] = byte
            self.writes.append((self.ptr, byte))
            self.ptr = (self.ptr + 1) % len(self.regs)

    def read(self) -> int:
        v = int(self.regs[self.ptr])
        self.ptr = (self.ptr + 1) % len(self.regs)
        return v
