"""Speed of the golden model on ``fpga_qb``: one second of 192 kHz audio.

    python benchmarks/golden.py [--seconds 1.0] [--config fpga_qb]

Prints samples per second of the whole-sequence (vectorised) and streaming
(sample-by-sample, hardware-style caches) evaluations, and their ratio,
measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nnhdl.configs import random_model
from nnhdl.reference import StreamingModel, evaluate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="fpga_qb")
    p.add_argument("--seconds", type=float, default=1.0, help="seconds of audio at the model's rate")
    args = p.parse_args()

    model = random_model(args.config, seed=0)
    n = int(args.seconds * model.sample_rate)
    x = np.random.default_rng(0).integers(-8192, 8192, size=(n, model.input_dim))

    t0 = time.perf_counter()
    whole = evaluate(model, x)
    t_whole = time.perf_counter() - t0

    stream = StreamingModel(model)
    t0 = time.perf_counter()
    streamed = stream.run(x)
    t_stream = time.perf_counter() - t0
    assert np.array_equal(whole, streamed), "whole-sequence and streaming golden models disagree"

    print(f"golden model, {args.config}: {model.params:,} params, {model.macs_per_sample:,} MACs/sample, "
          f"{n:,} samples ({args.seconds:g} s at {model.sample_rate} Hz)")
    print(f"  whole-sequence : {n / t_whole:12,.0f} samples/s  ({t_whole:.3f} s, {n / t_whole / model.sample_rate:.1f}x real time)")
    print(f"  streaming      : {n / t_stream:12,.0f} samples/s  ({t_stream:.3f} s, {n / t_stream / model.sample_rate:.2f}x real time)")
    print(f"  ratio whole/streaming: {t_stream / t_whole:.1f}x")


if __name__ == "__main__":
    main()
