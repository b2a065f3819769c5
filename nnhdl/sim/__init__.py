"""Simulation back ends for :class:`nnhdl.hdl.network.Network`: amaranth.sim and Verilator."""
