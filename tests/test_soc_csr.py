"""The SoC's CSR block in Migen simulation, driven through a 32-bit CSR bus like UARTBone's:
the weight upload protocol of soc.host.load_weights (address 0, then one data write per
word, auto-increment, read-back of the shadow, bank-swap pulse) must produce exactly the
network's weight_write port sequence of model.weight_image(), and one bank_swap pulse after it."""

import numpy as np
import pytest
from litex.soc.interconnect import csr_bus
from migen import Module, Signal, run_simulation

from nnhdl.hdl.network import Network
from soc.litex_soc import _NetworkCSRs
from soc.pmod import PmodTop, port_list
from tests.soc_helpers import small_model

# Networks built only for their port list / schedule are never elaborated.
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


class Harness(Module):
    def __init__(self, model):
        net = Network(model, banks=2)
        top = PmodTop(model, net)
        ports = port_list(top)
        for obj in (net, top, top.core):  # built for their ports only, never elaborated
            obj._MustUse__silence = True
        self.sig = {name: Signal(w, name=name) for name, w, _ in ports}
        self.submodules.nn = _NetworkCSRs(model, net.addr_width)
        self.nn.connect(None, self.sig)
        self.submodules.csrbanks = csr_bus.CSRBankArray(self, lambda name, memory: 0 if name == "nn" else None,
                                                        data_width=32)
        self.bus = self.csrbanks.get_buses()[0]
        self.addr = {}
        a = 0
        for csr in self.csrbanks.banks[0][1]:
            self.addr[csr.name] = (a, (csr.size + 31) // 32)
            a += (csr.size + 31) // 32


def bus_read(bus, adr):
    """Read one CSR word after letting the previous write settle: a status fed by a block-RAM
    read port is 3 registers behind a storage write (storage, RAM, bank dat_r).  Over the UART
    transactions are thousands of cycles apart; here we wait a few."""
    for _ in range(4):
        yield
    yield bus.adr.eq(adr)
    for _ in range(3):
        yield
    return (yield bus.dat_r)


def test_weight_upload_through_csr_bus():
    old, new = small_model(1), small_model(2)
    dut = Harness(old)
    image = [int(v) & 0xFFFF for v in new.weight_image()]
    seen, pulses, readback = [], [], []
    A = dut.addr

    def host():
        yield from dut.bus.write(A["weight_addr"][0], 0)
        for w in image:
            yield from dut.bus.write(A["weight_data"][0], w)
        for a in (0, 7, len(image) - 1):
            yield from dut.bus.write(A["weight_addr"][0], a)
            readback.append((yield from bus_read(dut.bus, A["weight_readback"][0])))
        yield from dut.bus.write(A["pulse"][0], 1)
        hi = yield from bus_read(dut.bus, A["shape_id"][0])
        lo = yield from bus_read(dut.bus, A["shape_id"][0] + 1)
        readback.append((hi << 32) | lo)
        yield from dut.bus.write(A["control"][0], 0b10)
        yield from dut.bus.write(A["emb0"][0], 0xF830)
        for _ in range(4):
            yield

    def monitor():
        for _ in range(20000):
            if (yield dut.sig["weight_write__en"]):
                seen.append(((yield dut.sig["weight_write__addr"]), (yield dut.sig["weight_write__data"])))
            if (yield dut.sig["bank_swap"]):
                pulses.append(len(seen))
            yield

    run_simulation(dut, [host(), monitor()])
    assert seen == list(enumerate(image))
    assert pulses == [len(image)]  # exactly one one-cycle pulse, after the last weight
    assert readback[:3] == [image[0], image[7], image[-1]]
    assert readback[3] == old.shape_id()
    assert old.model_id() != 0


def test_control_registers_reach_the_core():
    dut = Harness(small_model(1))
    A = dut.addr
    got = {}

    def host():
        yield from dut.bus.write(A["control"][0], 0b11)
        yield from dut.bus.write(A["emb0"][0], 0xF830)  # -2000 as 16 bits
        yield from dut.bus.write(A["emb1"][0], 1234)
        for _ in range(3):
            yield
        for k in ("bypass", "emb_override", "emb_value__0", "emb_value__1"):
            got[k] = yield dut.sig[k]
        yield dut.sig["overruns"].eq(77)
        yield
        yield
        got["overruns"] = yield from bus_read(dut.bus, A["overruns"][0])

    run_simulation(dut, host())
    assert got == {"bypass": 1, "emb_override": 1, "emb_value__0": 0xF830, "emb_value__1": 1234, "overruns": 77}
