"""How yosys ``synth_ecp5`` maps a ``lib.memory`` onto DP16KD block RAM or LUT RAM (one place).

A DP16KD is 18 kbit, configurable 512x36, 1024x18, 2048x9, 4096x4, 8192x2 or
16384x1 with 9-bit byte enables in the two widest modes.  yosys slices a wide
word bit-wise across blocks and a deep memory across blocks of one mode, taking
the mode that needs the fewest.  A memory written one element at a time (write
granularity) keeps each element within whole byte lanes of a block (two 16-bit
elements per 36-bit word).  Counts checked against yosys 0.70 runs.

Every memory nnhdl builds carries the ``ram_style`` :func:`ram_style` picks, so
the choice between block RAM and LUT RAM (TRELLIS_DPR16X4, 16 words x 4 bits)
is made here and the estimate equals what yosys builds.
"""

from __future__ import annotations

__all__ = ["DP16KD_BITS", "MODES", "blocks", "lutram_cells", "ram_style", "dp16kd", "cost", "shallow"]

DP16KD_BITS = 18 * 1024
#: (width, depth) of each DP16KD configuration
MODES = ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))
#: LUT-RAM cells worth one DP16KD: a memory needing at most this many cells per block saved stays in LUT RAM
#: (a TRELLIS_DPR16X4 takes about 6 LUT4 of a slice; the 85F has about 400 LUT4 per DP16KD)
LUTRAM_CELLS_PER_BLOCK = 64


def _grid(width: int, depth: int, elem: int | None) -> list[tuple[int, int]]:
    """``(blocks, rows)`` of each mode: a grid of whole columns by ``rows`` blocks deep."""
    out = []
    for pw, pd in MODES:
        rows = -(-depth // pd)
        if elem is None:
            cols = -(-width // pw)
        else:
            per = (pw // 9) // -(-elem // 9) if pw >= 9 else pw // elem  # 9-bit byte lanes hold whole elements
            cols = -(-(width // elem) // per) if per else (width // elem) * -(-elem // pw)
        out.append((cols * rows, rows))
    return out


def blocks(width: int, depth: int, elem: int | None = None) -> int:
    """DP16KD blocks yosys uses for a ``depth`` x ``width``-bit memory in block RAM.

    ``elem``: bits of one element when the write port has per-element
    granularity (``width`` a multiple of it); None when whole words are written.
    Exact when the memory is :func:`shallow`: then yosys takes the mode that
    needs the fewest blocks.  A deeper memory it may also split by depth or
    width across modes (a 256 x 1025 one takes 22, not 24), so nnhdl avoids them.
    """
    if width == 0 or depth == 0:
        return 0
    return min(b for b, _ in _grid(width, depth, elem))


def shallow(width: int, depth: int, elem: int | None = None) -> bool:
    """True when the cheapest mode holds the memory one block deep (its count is then exact)."""
    return width == 0 or depth == 0 or min(_grid(width, depth, elem))[1] == 1


def lutram_cells(width: int, depth: int) -> int:
    """TRELLIS_DPR16X4 cells of the memory in LUT RAM."""
    return -(-depth // 16) * -(-width // 4)


def ram_style(width: int, depth: int, elem: int | None = None) -> str:
    """``"block"`` or ``"distributed"``: the yosys ``ram_style`` nnhdl gives this memory (the cheaper one)."""
    return "distributed" if lutram_cells(width, depth) <= LUTRAM_CELLS_PER_BLOCK * blocks(width, depth, elem) \
        else "block"


def dp16kd(width: int, depth: int, elem: int | None = None) -> int:
    """DP16KD blocks of the memory as nnhdl builds it (0 when it goes to LUT RAM)."""
    return blocks(width, depth, elem) if ram_style(width, depth, elem) == "block" else 0


def cost(width: int, depth: int, elem: int | None = None) -> int:
    """The memory's cost in LUT-RAM cells (a DP16KD counts ``LUTRAM_CELLS_PER_BLOCK``), to compare layouts."""
    return min(lutram_cells(width, depth), LUTRAM_CELLS_PER_BLOCK * blocks(width, depth, elem))
