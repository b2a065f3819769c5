"""The ways nnhdl runs yosys ``synth_ecp5``, tried in order until one gives a sound netlist.

yosys 0.70 (YoWASP) has two faults that depend on the netlist, not on anything
nnhdl can avoid up front:

* its LUT mapping can hand back a netlist in which two flip-flops drive one net
  (YosysHQ/yosys#6237).  Which of abc9's two XAIGER writers does it depends on
  the design: the default ``write_xaiger2`` miswired fpga_wide with MULT18X18D
  lanes, the older writer (``abc9.xaiger``) miswired a 6-lane single-layer
  network that ``write_xaiger2`` maps correctly;
* abc9 can fail an internal assertion (ABC_OPS_REINTEGRATE).

So every flow runs ``check -assert`` after synthesis (a miswired netlist
stops in yosys, naming the net, instead of in nextpnr) and, when yosys fails
for one of these reasons, tries the next recipe.  All three flows
(``nnhdl synth``, ``nnhdl synth --pnr``, ``boards.pmod build``) use this list.
"""

from __future__ import annotations

from dataclasses import dataclass

from .hdl.fanout import KEEP_REPLICAS

__all__ = ["Recipe", "RECIPES", "retryable"]


@dataclass(frozen=True)
class Recipe:
    """``before`` runs after the design is read, ``synth_opts`` go to synth_ecp5, ``after`` follows it."""

    name: str
    before: str
    synth_opts: str = ""
    after: str = ""

    def before_lines(self) -> list[str]:
        """``before`` as script lines (one command per line)."""
        return _lines(self.before)

    def after_lines(self) -> list[str]:
        """``after`` as script lines (a .ys file holds one command per line), then ``check -assert``."""
        return _lines(self.after) + ["check -assert"]


def _lines(commands: str) -> list[str]:
    return [c.strip() for c in commands.split(";") if c.strip()]


RECIPES: tuple[Recipe, ...] = (
    Recipe("abc9", KEEP_REPLICAS),
    Recipe("abc9, older XAIGER writer", f"{KEEP_REPLICAS}; scratchpad -set abc9.xaiger 1"),
    # classic abc maps the LUTs, everything else as synth_ecp5 does
    Recipe("abc (abc9 failed)", KEEP_REPLICAS, "-run begin:map_luts",
           "techmap -map +/lattice/latches_map.v; abc -lut 4:7 -dress; clean; synth_ecp5 -top top -run map_cells:"),
)


def retryable(log_tail: str) -> bool:
    """Whether a failed synthesis (the end of yosys's log) is one of the faults above."""
    return "ABC" in log_tail or "conflicting drivers" in log_tail or "Found and reported" in log_tail
