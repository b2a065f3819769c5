"""Amaranth 0.5 generators for nnhdl networks (DESIGN §1-2 in gates).

One concept per module: :mod:`.dot` (dot products), :mod:`.matrix` (a tap
vector against a weight matrix held in block RAM), :mod:`.cache` (the dilated
activation history), :mod:`.conv` (one layer), :mod:`.network` (the whole
model), :mod:`.weights` (the runtime weight-write address space) and
:mod:`.schedule` (exact cycles and resource estimates).  Every arithmetic rule
comes from :mod:`nnhdl.fixedpoint`; tests prove the gates compute the same
integers as :mod:`nnhdl.reference`.
"""
