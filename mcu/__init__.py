"""MCU back end: C emitter (CMSIS-DSP) for the Electrosmith Daisy (Cortex-M7).

Modules:

* :mod:`mcu.arith` — the two arithmetics, one record each (C types, sizes, step symbol, styles, emitter);
* :mod:`mcu.plan` — memory plan and the int32-accumulator proof, shared by both emitters;
* :mod:`mcu.layout` — the C layout both share (rows, groups, state, reset, dispatch) and ``generate``;
* :mod:`mcu.emit_q412` — bit-exact integer C (SMLAD/SMLALD/USAT, or arm_dot_prod_q15);
* :mod:`mcu.emit_f32` — float32 C (fmaf straight-line, or arm_mat_mult/add/clip_f32);
* :mod:`mcu.files` — writing generated files, all or none;
* :mod:`mcu.templates` — header and helper macros; ``templates/`` holds the QEMU start-up and linker script;
* :mod:`mcu.mirror` — the float32 CMSIS program through the ``cmsisdsp`` Python package, call for call;
* :mod:`mcu.cmsis` — CMSIS-DSP sources from the cmsisdsp sdist, compiled once into cached libraries;
* :mod:`mcu.build`, :mod:`mcu.harness` — host and Cortex-M7/QEMU builds and test programs;
* :mod:`mcu.check` — ``python -m mcu.check``; :mod:`mcu.export` — ``python -m mcu.export``;
* :mod:`mcu.daisy` — the Daisy Patch firmware project; :mod:`mcu.target` — ``nnhdl run --target c``.
"""
