"""The documented limits (README "Limits"): what one input may make nnhdl build or allocate.

A few kilobytes of JSON can describe a layer with a billion-entry cache; a
tiny zip can claim gigabytes.  Every reader checks these bounds *before*
allocating, so a hostile file is refused with one line instead of eating the
machine.  They are far above anything the targets can run (the ECP5 has 208
block RAMs, the Daisy 512 KiB of SRAM) and far below what breaks a laptop.
"""

from __future__ import annotations

from .errors import ModelError

#: Layers in one network.
MAX_LAYERS = 256
#: Taps of one convolution.
MAX_KERNEL = 256
#: Dilation of one convolution.
MAX_DILATION = 65536
#: Entries of one layer's activation cache, ``(K - 1) * d + 1``.
MAX_CACHE = 1 << 20
#: Channels in or out of one layer (also what a .wav output can hold).
MAX_DIM = 4096
#: Weights and biases of one network (int32 each: 64 MiB in the file).
MAX_PARAMS = 1 << 24
#: Cache entries times channels over the whole network (8 bytes each in the golden model: 256 MiB).
MAX_STATE = 1 << 25
#: Sample rates (Hz) a model may declare; .wav stores 32 bits, audio codecs stop at 768 kHz.
MAX_SAMPLE_RATE = 10_000_000

#: A model file (.npz) on disk, and the sum of its members' uncompressed sizes.
MAX_MODEL_BYTES = 256 << 20
#: The JSON manifest inside a model file.
MAX_MANIFEST_BYTES = 1 << 20
#: Any other JSON input (configuration, calibration, sidecar, layer info, report.json).
MAX_JSON_BYTES = 1 << 20
#: Nesting of brackets in any JSON input (the deepest real file has 4).
MAX_JSON_DEPTH = 64
#: Sample files (.npy / .wav) read by ``run`` and training, and the values they hold.
MAX_SAMPLE_FILE_BYTES = 256 << 20
MAX_SAMPLE_VALUES = 1 << 26
#: A qkeras weight file (.pkl / .npz) and the elements one unpickled array may claim.
MAX_WEIGHTS_BYTES = 64 << 20
MAX_ARRAY_ELEMENTS = 1 << 24
#: A LiteX csr.csv.
MAX_CSV_BYTES = 4 << 20


def check_layer_shape(kernel_size: int, dilation: int, in_dim: int | None, out_dim: int, where: str) -> None:
    """Refuse one layer past the limits (the values are already known to be positive integers)."""
    for name, value, limit in (("kernel_size", kernel_size, MAX_KERNEL), ("dilation", dilation, MAX_DILATION),
                               ("in_dim", in_dim, MAX_DIM), ("out_dim", out_dim, MAX_DIM)):
        if value is not None and value > limit:
            raise ModelError(f"{where}.{name}: {value} is above the limit of {limit} (README: Limits)")
    cache = (kernel_size - 1) * dilation + 1
    if cache > MAX_CACHE:
        raise ModelError(f"{where}: activation cache of (kernel_size - 1) * dilation + 1 = {cache} entries is "
                         f"above the limit of {MAX_CACHE} (README: Limits)")


def check_network_size(n_layers: int, where: str = "layers") -> None:
    if n_layers > MAX_LAYERS:
        raise ModelError(f"{where}: {n_layers} layers is above the limit of {MAX_LAYERS} (README: Limits)")


def check_sample_rate(rate: object, where: str = "sample_rate") -> int:
    """A positive integer rate up to :data:`MAX_SAMPLE_RATE` (no bool, no float)."""
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise ModelError(f"{where}: must be a positive integer (Hz), got {rate!r}")
    if rate > MAX_SAMPLE_RATE:
        raise ModelError(f"{where}: {rate} Hz is above the limit of {MAX_SAMPLE_RATE} Hz (README: Limits)")
    return rate
