"""soc.registers is the single source of the SoC's register set.

The csr.csv LiteX writes for a real SoC, the Verilog ports of the Amaranth top and the
addresses the host client touches are compared with the table, in both directions (a
register missing from either side, or one added by hand outside the table, fails); and no
module that used to restate the set spells a register, field or port name as a string.
"""

import ast
import contextlib
import csv
import io
from pathlib import Path

import pytest

from soc.registers import PREFIX, REGISTERS, Flow, ports

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A whole SoC for a small model through LiteX's Builder (no Verilator, no synthesis):
    its csr.csv rows and the Amaranth top's port list."""
    from litex.soc.integration.builder import Builder

    from soc.board_sim import SimPrimitives, _platform_class, _sim_io
    from soc.build import CORE_NAME, BuildOptions, core, plan
    from soc.litex_soc import PmodSoC
    from soc.pmod import to_verilog
    from tests.soc_helpers import small_model

    out = tmp_path_factory.mktemp("soc")
    p = plan(BuildOptions(model=small_model(1), sample_rate=48000), log=lambda s: None)
    text, port_list = to_verilog(core(p), CORE_NAME)
    (out / f"{CORE_NAME}.v").write_text(text)
    platform = _platform_class()("sim", _sim_io(p.clocking == "cdc"))
    with contextlib.redirect_stdout(io.StringIO()):
        soc = PmodSoC(platform, p.board, p.model, out / f"{CORE_NAME}.v", port_list, sys_clk_hz=p.sys_mhz * 1e6,
                      sample_rate=p.rate, addr_width=p.net.addr_width, clocking=p.clocking,
                      primitives=SimPrimitives())
        Builder(soc, output_dir=str(out), csr_csv=str(out / "csr.csv"), compile_software=False,
                compile_gateware=False).build(build_name="top")
    rows = [r for r in csv.reader((out / "csr.csv").read_text().splitlines()) if r and r[0] == "csr_register"]
    return out / "csr.csv", rows, port_list


def test_csr_csv_holds_exactly_the_table(built):
    _, rows, _ = built
    nn = [(r[1], int(r[3]), r[4]) for r in rows if r[1].startswith(PREFIX)]
    want = [(PREFIX + r.name, -(-r.width // 32), "rw" if r.flow is Flow.CONTROL else "ro") for r in REGISTERS]
    assert nn == want  # same names, sizes, access and order; nothing extra


def test_verilog_ports_are_the_tables(built):
    _, _, port_list = built
    pins = {"bick", "lrck", "sdin", "sdout", "pdn", "scl_oe", "sda_oe", "sda_i"}
    got = {(name, width, d) for name, width, d in port_list if name not in pins and not name.startswith("weight_write")}
    want = set()
    for p, flow in ports():
        for name in p.verilog_names():
            want.add((name, p.width, "i" if flow is Flow.CONTROL else "o"))
    assert got == want


class RecordingBus:
    """Answers reads from a dict and remembers every address read or written."""

    def __init__(self, values):
        self.values, self.touched = values, set()

    def read(self, addr, length=None):
        self.touched.add(addr)
        return self.values.get(addr, 0)

    def write(self, addr, data, burst="incr"):
        self.touched.add(addr)


def test_host_reads_every_status_register_of_the_csv_and_nothing_else(built):
    from soc.host import Board, CSRMap, read_status

    path, rows, _ = built
    csrs = CSRMap.load(path)
    status = read_status(Board(bus := RecordingBus({}), csrs))
    readable = {name: (a, n) for name, (a, n) in csrs.regs.items() if name.startswith(PREFIX)}
    want = {PREFIX + r.name for r in REGISTERS if r.status}
    assert {PREFIX + k for k in status} == want <= set(readable)
    assert bus.touched == {a + 4 * i for name in want for a, n in [readable[name]] for i in range(n)}


def test_a_name_outside_the_table_is_refused_before_the_bus():
    from soc.host import Board, CSRMap

    bus = RecordingBus({})
    board = Board(bus, CSRMap({PREFIX + "sample": (0x1000, 1)}))
    with pytest.raises(KeyError):
        board.read("sample")  # a typo of "samples", even one present in csr.csv
    assert not bus.touched


RESTATERS = ("soc/core.py", "soc/pmod.py", "soc/litex_soc.py", "soc/host.py", "boards/pmod.py")
#: Strings equal to a table name that mean something else.
ALLOWED = {("soc/litex_soc.py", "serial"): "the platform's UART resource (add_uartbone), not the serial register"}


def test_no_module_restates_a_register_name():
    names = {r.name for r in REGISTERS} | {f.name for r in REGISTERS for f in r.fields}
    names |= {n for p, _ in ports() for n in [p.name, *p.verilog_names()]}
    found = []
    for rel in RESTATERS:
        tree = ast.parse((ROOT / rel).read_text())
        exports = {id(c) for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "__all__"
                   for c in ast.walk(n.value)}  # names of Python objects, not of registers
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and id(node) not in exports and node.value in names and (rel, node.value) not in ALLOWED:
                found.append(f"{rel}:{node.lineno}: {node.value!r}")
    assert not found, "register names restated outside soc/registers.py:\n" + "\n".join(found)
