"""MCU back end: C emitter (CMSIS-DSP) for the Electrosmith Daisy (Cortex-M7)."""
