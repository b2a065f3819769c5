"""Host side of the SoC: talk to the CSRs over UARTBone (or any bus with read/write).

``load_weights`` writes a model's weight image into the inactive bank,
verifies it by reading the write-through shadow back, switches banks (the
switch lands on a sample boundary in hardware) and updates the model id.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol


from nnhdl.errors import NnhdlError
from nnhdl.inputs import input_file
from nnhdl.limits import MAX_CSV_BYTES
from nnhdl.model import Model

from .registers import (ACTIVE_BANK, BANK_SWAP, MODEL_ID, N_WEIGHTS, PREFIX, PULSE, REGISTERS, SHAPE_ID,
                        WEIGHT_ADDR, WEIGHT_DATA, WEIGHT_READBACK, Register, register)

__all__ = ["ConnectionLost", "Bus", "UARTBoneBus", "CSRMap", "Board", "Loaded", "load_weights", "read_status", "describe_mismatch", "STATUS_FIELDS"]

#: What ``read_status`` reads, in table order (soc.registers: the order ``boards.pmod status`` prints).
STATUS_FIELDS = tuple(r.name for r in REGISTERS if r.status)


class ConnectionLost(NnhdlError):
    """The serial peer went away (cable pulled, board reset) in the middle of a session."""


class Bus(Protocol):
    def read(self, addr: int, length: int | None = None) -> int | list[int]: ...
    def write(self, addr: int, data: int | list[int], burst: str = "incr") -> None: ...


class UARTBoneBus:
    """LiteX UARTBone protocol over pyserial, with timeouts (a silent port is an error, not a hang).

    Frames: command byte (1 write-incr, 2 read-incr, 3 write-fixed, 4 read-fixed), word
    count, 32-bit word address (big endian), then 32-bit big-endian data words.
    """

    def __init__(self, port: str, baudrate: int = 115200, timeout: float = 2.0) -> None:
        try:
            import serial
        except ImportError:
            raise NnhdlError("pyserial is not installed; pip install 'nnhdl[soc]'") from None
        try:
            self.port = serial.serial_for_url(port, baudrate, timeout=timeout)
        except (serial.SerialException, OSError, ValueError) as e:
            raise NnhdlError(f"cannot open {port}: {e}") from None
        self.name = port
        self._errors = (serial.SerialException, OSError)

    def close(self) -> None:
        try:
            self.port.close()
        except self._errors:
            pass

    def _lost(self, e: BaseException) -> ConnectionLost:
        return ConnectionLost(f"lost the connection to {self.name} ({' '.join(str(e).split()) or type(e).__name__})")

    def _send(self, cmd: int, addr: int, words: list[int]) -> None:
        try:
            self._send_frame(cmd, addr, words)
        except self._errors as e:
            raise self._lost(e) from None

    def _send_frame(self, cmd: int, addr: int, words: list[int]) -> None:
        self.port.reset_input_buffer()
        self.port.write(bytes([cmd, len(words) if cmd in (1, 3) else words[0]]) + (addr // 4).to_bytes(4, "big")
                        + b"".join(int(w).to_bytes(4, "big") for w in (words if cmd in (1, 3) else [])))

    def read(self, addr: int, length: int | None = None) -> int | list[int]:
        n = 1 if length is None else length
        self._send(2, addr, [n])
        try:
            data = self.port.read(4 * n)
        except self._errors as e:
            raise self._lost(e) from None
        if len(data) != 4 * n:
            raise NnhdlError(f"{self.name}: no answer from the board's UART bridge (wrong port, or not "
                             f"running an nnhdl bitstream?)")
        vals = [int.from_bytes(data[4 * i: 4 * i + 4], "big") for i in range(n)]
        return vals[0] if length is None else vals

    def write(self, addr: int, data: int | list[int], burst: str = "incr") -> None:
        words = data if isinstance(data, list) else [data]
        for i in range(0, len(words), 255):
            chunk = words[i: i + 255]
            self._send(3 if burst == "fixed" else 1, addr if burst == "fixed" else addr + 4 * i, chunk)


@dataclass(frozen=True)
class CSRMap:
    """``name -> (address, 32-bit words)`` from LiteX's csr.csv."""

    regs: dict[str, tuple[int, int]]

    @classmethod
    def load(cls, path: str | Path) -> "CSRMap":
        path = Path(path)
        if not path.exists():
            raise NnhdlError(f"{path}: no csr.csv; pass --build-dir of the build that made the bitstream")
        path = input_file(path, "csr.csv", MAX_CSV_BYTES)
        regs = {}
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise NnhdlError(f"{path}: not a text file (a LiteX csr.csv is UTF-8 text)") from None
        try:
            for line, row in enumerate(csv.reader(text.splitlines()), 1):
                if row and row[0] == "csr_register":
                    if len(row) < 4:
                        raise ValueError("a csr_register row needs name, address and size")
                    addr, size = int(row[2], 0), int(row[3])
                    if not 0 <= addr < 1 << 32 or addr % 4 or not 1 <= size <= 8:
                        raise ValueError(f"address {row[2]} / size {row[3]} is not a 32-bit word register")
                    regs[row[1]] = (addr, size)
        except (ValueError, csv.Error) as e:
            raise NnhdlError(f"{path}: line {line}: {e}") from None
        if not any(k.startswith(PREFIX) for k in regs):
            raise NnhdlError(f"{path}: no nnhdl registers in this csr.csv (was it built by `boards.pmod build`?)")
        return cls(regs)


class Board:
    """Named CSR access (multi-word registers are most significant word first, as LiteX lays them out)."""

    def __init__(self, bus: Bus, csrs: CSRMap) -> None:
        self.bus = bus
        self.csrs = csrs

    def _reg(self, reg: Register | str) -> tuple[int, int]:
        """Address and words of a register of the table (a name outside it is a programming error)."""
        reg = register(reg) if isinstance(reg, str) else reg
        try:
            return self.csrs.regs[reg.csr_name]
        except KeyError:
            raise NnhdlError(f"register {reg.name!r} not in csr.csv (built by an older version?)") from None

    def read(self, reg: Register | str) -> int:
        addr, n = self._reg(reg)
        v = 0
        for i in range(n):
            v = (v << 32) | int(self.bus.read(addr + 4 * i))
        return v

    def write(self, reg: Register | str, value: int) -> None:
        addr, n = self._reg(reg)
        for i in range(n):
            self.bus.write(addr + 4 * i, (value >> (32 * (n - 1 - i))) & 0xFFFFFFFF)

    def write_fifo(self, reg: Register | str, values: list[int]) -> None:
        addr, n = self._reg(reg)
        self.bus.write(addr, values, burst="fixed")


def describe_mismatch(built: dict, model: Model) -> str:
    """Name the first field where ``model`` differs from the built network's manifest."""
    new = model.hardware_manifest()
    for key in ("qformat", "rounding", "input_dim", "output_dim"):
        if built.get(key) != new.get(key):
            return f"{key} is {new.get(key)!r} but the bitstream was built for {built.get(key)!r}"
    bl, nl = built.get("layers", []), new["layers"]
    if len(bl) != len(nl):
        return f"the model has {len(nl)} layers but the bitstream was built for {len(bl)}"
    for n, (a, b) in enumerate(zip(bl, nl)):
        for key in a:
            if a.get(key) != b.get(key):
                return f"layer {n} {key} is {b.get(key)!r} but the bitstream was built for {a.get(key)!r}"
    return "the layer shapes differ from the built network"


@dataclass(frozen=True)
class Loaded:
    """What :func:`load_weights` did: weights written, the bank now active, the model id written."""

    weights: int
    active_bank: int
    model_id: int


def load_weights(board: Board, model: Model, *, built_manifest: dict | None = None,
                 progress: Callable[[str], None] = lambda s: None) -> Loaded:
    """Upload, verify, switch.  Returns a summary; raises NnhdlError on any mismatch."""
    model.validate()
    bank = _active_bank(board)
    want = model.shape_id()
    have = board.read(SHAPE_ID)
    if have != want:
        why = describe_mismatch(built_manifest, model) if built_manifest else \
            f"shape id {want:016x} differs from the board's {have:016x}"
        raise NnhdlError(f"cannot load these weights without resynthesis: {why}")
    image = model.weight_image()
    n = board.read(N_WEIGHTS)
    if n != len(image):
        raise NnhdlError(f"the board holds {n} weights, the model {len(image)}")
    words = [int(v) & 0xFFFF for v in image]
    progress(f"writing {len(words)} weights into bank {1 - bank}")
    try:
        board.write(WEIGHT_ADDR, 0)
        board.write_fifo(WEIGHT_DATA, words)
        progress("verifying")
        bad = []
        for a, w in enumerate(words):
            board.write(WEIGHT_ADDR, a)
            if board.read(WEIGHT_READBACK) & 0xFFFF != w:
                bad.append(a)
    except ConnectionLost as e:
        raise ConnectionLost(f"{e}; bank {bank} is still active, untouched (only the inactive bank was written)") \
            from None
    if bad:
        raise NnhdlError(f"read-back mismatch at {len(bad)} addresses (first {bad[0]}); bank not switched")
    board.write(PULSE, PULSE.bit(BANK_SWAP))
    for _ in range(100):
        if board.read(ACTIVE_BANK) != bank:
            break
    else:
        raise NnhdlError("the bank did not switch (is audio running? the switch waits for a sample boundary)")
    board.write(MODEL_ID, model.model_id())
    return Loaded(len(words), 1 - bank, model.model_id())


def _active_bank(board: Board) -> int:
    """0 or 1; anything else means the peer is not an nnhdl board (wrong port or baud rate)."""
    bank = board.read(ACTIVE_BANK)
    if bank not in (0, 1):
        raise NnhdlError(f"the board answered active_bank = {bank:#x}, which an nnhdl bitstream cannot: "
                         "is this the right port and baud rate?")
    return bank


#: Bits of the status registers that are narrower than their CSR words (the rest must read 0).
_STATUS_BITS = {r.name: r.width for r in REGISTERS if r.status and r.width % 32}


def read_status(board: Board) -> dict[str, int]:
    """The status counters; refused when the answers cannot come from an nnhdl bitstream."""
    st = {k: board.read(k) for k in STATUS_FIELDS}
    for k, bits in _STATUS_BITS.items():
        if st[k] >> bits:
            raise NnhdlError(f"the board answered {k} = {st[k]:#x}, wider than its {bits} bits: is this the "
                             "right port and baud rate?")
    return st
