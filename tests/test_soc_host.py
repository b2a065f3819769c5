"""Host driver (load-weights / status) against a model of the board's CSR block.

The board itself cannot exist here: ``FakeBoardBus`` implements the register
semantics of soc.litex_soc._NetworkCSRs (auto-incrementing weight address,
write-through shadow, bank swap pulse) at LiteX's 32-bit-word addresses.  The
hardware side of the reload (bank switch at a sample boundary) is tested in
test_soc_reload.py.
"""

import numpy as np
import pytest

from nnhdl.configs import LayerSpec, NetworkSpec, random_model
from nnhdl.errors import NnhdlError
from nnhdl.hdl.weights import weight_image
from soc.host import Board, CSRMap, describe_mismatch, load_weights, read_status
from soc.litex_soc import hardware_manifest, model_id, shape_id
from tests.soc_helpers import small_model

NAMES = [("model_id", 2), ("shape_id", 2), ("n_weights", 1), ("control", 1), ("pulse", 1), ("emb0", 1),
         ("emb1", 1), ("weight_addr", 1), ("weight_data", 1), ("weight_readback", 1), ("active_bank", 1),
         ("samples", 1), ("overruns", 1), ("saturations", 1), ("clipped", 1), ("cycles", 1), ("cycles_max", 1),
         ("jack", 1), ("i2c", 1), ("serial", 2)]


def csr_map():
    regs, addr = {}, 0x2000
    for name, n in NAMES:
        regs["nn_" + name] = (addr, n)
        addr += 4 * n
    return CSRMap(regs)


class FakeBoardBus:
    def __init__(self, model, csrs, *, corrupt_at=None, stuck_bank=False):
        self.by_addr = {}
        for name, (a, n) in csrs.regs.items():
            for i in range(n):
                self.by_addr[a + 4 * i] = (name[3:], i, n)
        self.regs = {name[3:]: 0 for name in csrs.regs}
        self.regs.update(model_id=model_id(model), shape_id=shape_id(model), n_weights=model.params)
        self.shadow = np.zeros(model.params, np.int64)
        self.corrupt_at, self.stuck_bank = corrupt_at, stuck_bank
        self.writes_to_data = 0

    def _word(self, name, i, n):
        return (self.regs[name] >> (32 * (n - 1 - i))) & 0xFFFFFFFF

    def read(self, addr, length=None):
        name, i, n = self.by_addr[addr]
        if name == "weight_readback":
            v = int(self.shadow[self.regs["weight_addr"]])
            return v ^ 1 if self.regs["weight_addr"] == self.corrupt_at else v
        return self._word(name, i, n)

    def write(self, addr, data, burst="incr"):
        name, i, n = self.by_addr[addr]
        values = data if isinstance(data, list) else [data]
        assert burst == "fixed" or len(values) == 1
        for v in values:
            if name == "weight_data":
                self.shadow[self.regs["weight_addr"]] = v & 0xFFFF
                self.regs["weight_addr"] += 1
                self.writes_to_data += 1
            elif name == "pulse":
                if v & 1 and not self.stuck_bank:
                    self.regs["active_bank"] ^= 1
            else:
                shift = 32 * (n - 1 - i)
                self.regs[name] = (self.regs[name] & ~(0xFFFFFFFF << shift)) | ((v & 0xFFFFFFFF) << shift)


def test_load_weights_uploads_verifies_switches():
    old, new = small_model(1), small_model(2)
    csrs = csr_map()
    bus = FakeBoardBus(old, csrs)
    res = load_weights(Board(bus, csrs), new)
    np.testing.assert_array_equal(bus.shadow, weight_image(new) & 0xFFFF)
    assert bus.writes_to_data == new.params
    assert res["active_bank"] == 1 and bus.regs["active_bank"] == 1
    assert bus.regs["model_id"] == model_id(new) != model_id(old)
    st = read_status(Board(bus, csrs))
    assert st["shape_id"] == shape_id(old) and st["n_weights"] == old.params


def test_readback_mismatch_keeps_old_bank():
    old, new = small_model(1), small_model(2)
    csrs = csr_map()
    bus = FakeBoardBus(old, csrs, corrupt_at=5)
    with pytest.raises(NnhdlError, match="read-back mismatch at 1 addresses \\(first 5\\); bank not switched"):
        load_weights(Board(bus, csrs), new)
    assert bus.regs["active_bank"] == 0 and bus.regs["model_id"] == model_id(old)


def test_bank_that_never_switches():
    old, new = small_model(1), small_model(2)
    csrs = csr_map()
    with pytest.raises(NnhdlError, match="did not switch"):
        load_weights(Board(FakeBoardBus(old, csrs, stuck_bank=True), csrs), new)


def test_shape_mismatch_is_named():
    old = small_model(1)
    other = random_model(NetworkSpec("o", 4, (LayerSpec(3, 1, 4, "qb", "relu"), LayerSpec(2, 3, 3, "qb", "none"))), 0)
    csrs = csr_map()
    bus = FakeBoardBus(old, csrs)
    with pytest.raises(NnhdlError, match="layer 1 dilation is 3 but the bitstream was built for 2"):
        load_weights(Board(bus, csrs), other, built_manifest=hardware_manifest(old))
    with pytest.raises(NnhdlError, match="shape id"):
        load_weights(Board(bus, csrs), other)
    assert bus.writes_to_data == 0
    assert "input_dim" in describe_mismatch(hardware_manifest(old), random_model(
        NetworkSpec("i", 3, (LayerSpec(1, 1, 3, "qb", "none"),)), 0))


def test_csr_csv_errors(tmp_path):
    with pytest.raises(NnhdlError, match="no csr.csv"):
        CSRMap.load(tmp_path / "csr.csv")
    (tmp_path / "csr.csv").write_text("csr_register,ctrl_reset,0xf0000000,1,rw\n")
    with pytest.raises(NnhdlError, match="no nnhdl registers"):
        CSRMap.load(tmp_path / "csr.csv")
    (tmp_path / "csr.csv").write_text("csr_register,nn_shape_id,0xf0000800,2,ro\n")
    assert CSRMap.load(tmp_path / "csr.csv").regs["nn_shape_id"] == (0xF0000800, 2)
