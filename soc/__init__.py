"""LiteX SoC and Amaranth eurorack-pmod peripherals around the nnhdl network core."""
