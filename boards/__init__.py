"""Board support: build and flash the eurorack-pmod SoC (python -m boards.pmod)."""
