"""nnhdl: tiny quantised WaveNet-style networks that compute the same integers
in numpy, on an FPGA (Amaranth) and on a microcontroller (CMSIS-DSP C)."""

from .errors import ModelError, NnhdlError
from .fixedpoint import Q4_12, QFormat
from .model import Layer, Model

__all__ = ["Layer", "Model", "ModelError", "NnhdlError", "QFormat", "Q4_12"]
__version__ = "0.1.0"
