"""Quantisation-aware JAX/optax training of nnhdl models on the waveshaper task.

Modules: ``data`` (synthetic generator, WAV recordings loader, held-out set),
``quantisers`` (JAX versions of nnhdl.fixedpoint, straight-through),
``model`` (the network in JAX from the model's layer list, export),
``train`` / ``evaluate`` / ``import_qkeras`` (command-line tools),
``defaults`` (settings of the bundled models).
"""
