"""Register replication for control signals with thousands of loads.

A 26-lane layer's tap register is ~4,000 flip-flops that all load or rotate
on one enable; driven by one flip-flop, that net's routing delay set the
design's Fmax.  :func:`replicated_register` makes several flip-flops with the
same next value, one per group of loads.  Synthesis would merge them back
(yosys ``opt_merge`` joins cells with equal inputs, and a ``keep`` on the wire
does not stop it), so the replicas carry a name prefix that the synthesis
scripts (:data:`KEEP_REPLICAS`) turn into ``keep`` on the flip-flop cells.

The same merge hurts registers that exist once per layer on purpose: every
layer decodes the shared weight-write bus in its own pipeline, and identical
layers compute identical registers, so yosys kept one copy and routed it across
the chip to every layer (fpga_wide's critical path: 9.9 ns of routing).  Those
carry :data:`LOCAL_PREFIX` and are kept the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the synthesis scripts read the constants without loading Amaranth
    from amaranth import Module, Signal
    from amaranth.hdl import ValueLike

__all__ = ["REPLICA_PREFIX", "LOCAL_PREFIX", "KEEP_REPLICAS", "LOADS_PER_REPLICA", "replicated_register"]

#: flip-flops whose name starts with this are replicas that synthesis must keep apart
REPLICA_PREFIX = "replica_"
#: flip-flops whose name starts with this belong to one layer and must not be shared with an identical layer
LOCAL_PREFIX = "local_"
#: yosys commands (after the design is read) marking those flip-flops ``keep`` so opt_merge leaves them
KEEP_REPLICAS = f"proc; setattr -set keep 1 w:{REPLICA_PREFIX}* w:{LOCAL_PREFIX}* %u %ci1 c:* %i"
#: flip-flops one replica drives: a few slices' worth, so the net stays local.  Tried and measured worse
#: (yosys 0.70 + nextpnr 0.11, placer seed 2): 64 on fpga_wide (placement estimated at 99.5 MHz against
#: 110.7, then the router diverged: 8,000 overused wires at iteration 25) and cutting tap chains longer
#: than 256 bits into runs (fpga_po2 at 122.9 MHz against 128.6).
LOADS_PER_REPLICA = 256


def replicated_register(m: Module, next_value: ValueLike, *, name: str, copies: int, init: int = 0) -> list[Signal]:
    """``copies`` one-bit registers that each take ``next_value`` every cycle (``m.d.sync``)."""
    from amaranth import Signal

    regs = [Signal(init=init, name=f"{REPLICA_PREFIX}{name}{k}") for k in range(max(1, copies))]
    m.d.sync += [r.eq(next_value) for r in regs]
    return regs

