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

__all__ = ["REPLICA_PREFIX", "LOCAL_PREFIX", "KEEP_REPLICAS", "LOADS_PER_REPLICA", "chain_groups",
           "replicated_register"]

#: flip-flops whose name starts with this are replicas that synthesis must keep apart
REPLICA_PREFIX = "replica_"
#: flip-flops whose name starts with this belong to one layer and must not be shared with an identical layer
LOCAL_PREFIX = "local_"
#: yosys commands (after the design is read) marking those flip-flops ``keep`` so opt_merge leaves them
KEEP_REPLICAS = f"proc; setattr -set keep 1 w:{REPLICA_PREFIX}* w:{LOCAL_PREFIX}* %u %ci1 c:* %i"
#: flip-flops one replica drives: a few slices' worth, so the net stays local.  64 was tried for fpga_wide
#: (whose critical path is one replica's 160 CE loads, 8.65 ns of routing at 111.6 MHz): its placement was
#: estimated at 99.5 MHz and the router diverged (8,000 overused wires at iteration 25), so 256 stays.
LOADS_PER_REPLICA = 256


def chain_groups(lanes: int, chain_len: int, width: int, loads: int = LOADS_PER_REPLICA) -> tuple[int, list[list[int]]]:
    """Groups of at most ``loads`` flip-flops for ``lanes`` chains of ``chain_len`` items of ``width`` bits.

    A group is whole neighbouring chains, or one of a chain's contiguous runs of equal length, so the
    flip-flops one replica drives sit together.  Returns (number of groups, the group of item ``p`` of
    chain ``lane``).
    """
    chain_bits = chain_len * width
    if chain_bits <= loads:
        per = max(1, min(lanes, loads // max(1, chain_bits)))
        return -(-lanes // per), [[lane // per] * chain_len for lane in range(lanes)]
    parts = -(-chain_bits // loads)
    run = -(-chain_len // parts)
    parts = -(-chain_len // run)
    return lanes * parts, [[lane * parts + p // run for p in range(chain_len)] for lane in range(lanes)]


def replicated_register(m: Module, next_value: ValueLike, *, name: str, copies: int, init: int = 0) -> list[Signal]:
    """``copies`` one-bit registers that each take ``next_value`` every cycle (``m.d.sync``)."""
    from amaranth import Signal

    regs = [Signal(init=init, name=f"{REPLICA_PREFIX}{name}{k}") for k in range(max(1, copies))]
    m.d.sync += [r.eq(next_value) for r in regs]
    return regs

