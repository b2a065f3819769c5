"""Quantisation-aware JAX/optax training of nnhdl models on the waveshaper task."""
