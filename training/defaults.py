"""Training settings of the bundled models (nnhdl/models/*.npz).

``python -m training.train --config NAME --out nnhdl/models/NAME.npz --report``
uses these when --steps/--batch/--lr/--seed are not given, so each bundled
model is reproduced by that one command.
"""

DEFAULTS: dict[str, dict] = {
    "fpga_qb": {"steps": 25000, "batch": 32, "lr": 1e-2, "seed": 0},
    "fpga_po2": {"steps": 25000, "batch": 32, "lr": 3e-3, "seed": 0},
    "mcu": {"steps": 20000, "batch": 32, "lr": 1e-2, "seed": 0},
}
#: For layer-list JSON files and anything not listed above.
GENERIC = {"steps": 3000, "batch": 32, "lr": 3e-3, "seed": 0}
