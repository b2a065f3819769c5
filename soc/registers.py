"""The SoC's host-visible registers, in one table: :data:`REGISTERS`.

Everything else that names a register is generated from it: the control and
status ports of :class:`soc.core.BoardCore` and :class:`soc.pmod.PmodTop`, the
LiteX CSRs of ``soc.litex_soc._NetworkCSRs`` (hence the ``nn_*`` rows of
``csr.csv``, in this order) and the host client's status list and widths
(:mod:`soc.host`).  A new counter is one row here plus the logic that counts it.

Plain data, so the host tools read it without Amaranth, Migen or LiteX.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Flow", "Port", "Field", "Register", "REGISTERS", "PREFIX", "register", "ports",
           "MODEL_ID", "SHAPE_ID", "N_WEIGHTS", "PULSE", "WEIGHT_ADDR", "WEIGHT_DATA", "WEIGHT_READBACK",
           "ACTIVE_BANK", "BANK_SWAP", "EMB_VALUE", "SERIAL_BYTES"]

#: LiteX names the CSRs of the ``nn`` submodule ``nn_<register>``.
PREFIX = "nn_"


class Flow(enum.Enum):
    """Which way a register's value goes."""

    CONTROL = "control"  # host -> hardware: a CSRStorage, an input port of the core
    STATUS = "status"  # hardware -> host: a CSRStatus, an output port of the core


@dataclass(frozen=True)
class Port:
    """A port of the Amaranth top (:class:`soc.pmod.PmodTop`) that a register (or field) mirrors.

    ``count``: an array of that many ``width``-bit elements (Verilog ``name__0`` ...);
    ``core``: also a port of :class:`soc.core.BoardCore`, which the top forwards (else the
    top's own blocks drive or use it).
    """

    name: str
    width: int
    signed: bool = False
    count: int | None = None
    core: bool = True

    def verilog_names(self) -> list[str]:
        """The flat Verilog port names, element 0 first (as :func:`soc.pmod.port_list` names them)."""
        if self.count is None:
            return [self.name]
        return [f"{self.name}__{i}" for i in range(self.count)]


@dataclass(frozen=True)
class Field:
    """``width`` bits at ``offset`` of a register, mirroring ``port``."""

    name: str
    width: int
    port: Port
    offset: int | None = None  # None: right after the previous field (LiteX's rule)
    pulse: bool = False  # high for one cycle after each write
    description: str = ""


@dataclass(frozen=True)
class Register:
    """One CSR.  The whole register mirrors ``port`` (element ``index`` of an array port, or all
    elements with element 0 most significant), or each of ``fields`` mirrors its own port, or
    neither (``port is None`` and no fields: the weight upload registers, wired to the weight
    port and its shadow by the SoC)."""

    name: str
    flow: Flow
    width: int = 0  # with fields: their extent
    port: Port | None = None
    index: int | None = None
    fields: tuple[Field, ...] = ()
    status: bool = False  # read back by ``boards.pmod status`` (soc.host.read_status)
    hex: bool = False  # shown in hex by ``boards.pmod status``
    description: str = ""

    def __post_init__(self) -> None:
        if self.fields:
            end = 0
            for f in self.fields:
                end = (end if f.offset is None else f.offset) + f.width
            object.__setattr__(self, "width", end)
        elif self.port is not None:
            p = self.port
            want = p.width if self.index is not None or p.count is None else p.width * p.count
            if self.width != want:
                raise ValueError(f"register {self.name}: {self.width} bits mirror {want} bits of port {p.name}")

    def bit(self, port: Port) -> int:
        """The mask of the one-bit field that mirrors ``port``."""
        offset = 0
        for f in self.fields:
            offset = offset if f.offset is None else f.offset
            if f.port == port and f.width == 1:
                return 1 << offset
            offset += f.width
        raise KeyError(f"register {self.name} has no one-bit field for port {port.name}")

    @property
    def words(self) -> int:
        """32-bit CSR words (LiteX's csr.csv ``size``)."""
        return -(-self.width // 32)

    @property
    def csr_name(self) -> str:
        return PREFIX + self.name


CONTROL, STATUS = Flow.CONTROL, Flow.STATUS

#: The embedding override values, one register each (soc.core.EMBEDDING_INPUTS).
EMB_VALUE = Port("emb_value", 16, signed=True, count=2)
#: EEPROM bytes 0xFA..0xFF (maker, device, 32-bit serial) the I2C sequencer reads (soc.pmod_init).
SERIAL_BYTES = 6
BANK_SWAP = Port("bank_swap", 1)

MODEL_ID = Register("model_id", CONTROL, 64, status=True, hex=True,
                    description="Model fingerprint (first 64 bits); the host rewrites it after a weight reload.")
SHAPE_ID = Register("shape_id", STATUS, 64, status=True, hex=True,
                    description="Hash of the layer shapes built in.")
N_WEIGHTS = Register("n_weights", STATUS, 32, status=True, description="Number of weight addresses.")
CONTROL_BITS = Register("control", CONTROL, fields=(
    Field("bypass", 1, Port("bypass", 1), description="Copy inputs to outputs."),
    Field("emb_override", 1, Port("emb_override", 1), description="Replace the embedding inputs by emb0/emb1."),
))
PULSE = Register("pulse", CONTROL, fields=(
    Field("bank_swap", 1, BANK_SWAP, pulse=True, description="Activate the written bank at the next sample."),
    Field("clear", 1, Port("clear", 1), pulse=True, description="Clear the status counters."),
    Field("codec_restart", 1, Port("codec_restart", 1, core=False), pulse=True,
          description="Power-cycle and re-initialise the codec."),
))
EMB = tuple(Register(f"emb{i}", CONTROL, 16, EMB_VALUE, index=i, description=f"Embedding override e{i} (counts).")
            for i in range(EMB_VALUE.count))
WEIGHT_ADDR = Register("weight_addr", CONTROL, 32, description="Next weight address; "
                       "auto-increments after each weight_data write.")
WEIGHT_DATA = Register("weight_data", CONTROL, 16,
                       description="Writing stores a mantissa at weight_addr (inactive bank).")
WEIGHT_READBACK = Register("weight_readback", STATUS, 16,
                           description="Shadow copy of the word last written at weight_addr.")
ACTIVE_BANK = Register("active_bank", STATUS, 1, Port("active_bank", 1), status=True)


def _counter(name: str, width: int = 32, *, core: bool = True) -> Register:
    return Register(name, STATUS, width, Port(name, width, core=core), status=True)


#: Table order is the csr.csv order and the order ``boards.pmod status`` prints: status first.
REGISTERS: tuple[Register, ...] = (
    _counter("samples"), _counter("overruns"), _counter("saturations"), _counter("clipped", core=False),
    _counter("cycles", 16), _counter("cycles_max", 16), ACTIVE_BANK,
    Register("jack", STATUS, 8, Port("jack", 8, core=False), status=True),
    Register("i2c", STATUS, fields=(Field("ready", 1, Port("i2c_ready", 1, core=False)),
                                    Field("nacks", 16, Port("i2c_nacks", 16, core=False), offset=8)), status=True),
    MODEL_ID, SHAPE_ID, N_WEIGHTS,
    Register("serial", STATUS, 8 * SERIAL_BYTES, Port("serial", 8, count=SERIAL_BYTES, core=False), status=True,
             hex=True, description="EEPROM bytes 0xFA..0xFF (maker, device, 32-bit serial)."),
    CONTROL_BITS, PULSE, *EMB, WEIGHT_ADDR, WEIGHT_DATA, WEIGHT_READBACK,
)

_BY_NAME = {r.name: r for r in REGISTERS}


def register(name: str) -> Register:
    """The register called ``name`` (without the ``nn_`` prefix); KeyError for any other name."""
    return _BY_NAME[name]


def ports(*, core_only: bool = False) -> list[tuple[Port, Flow]]:
    """Every port the registers mirror, once each, in table order, with its direction."""
    seen: dict[str, tuple[Port, Flow]] = {}
    for r in REGISTERS:
        for p in ([r.port] if r.port is not None else []) + [f.port for f in r.fields]:
            if core_only and not p.core:
                continue
            if seen.setdefault(p.name, (p, r.flow)) != (p, r.flow):
                raise ValueError(f"port {p.name} is declared twice with different shapes or directions")
    return list(seen.values())


ports()  # a port declared twice with different shapes fails at import, not at build time
