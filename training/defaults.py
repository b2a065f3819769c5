"""Training settings of the bundled models (nnhdl/models/*.npz).

``python -m training.train --config NAME --out nnhdl/models/NAME.npz --report``
uses these when --steps/--batch/--lr/--seed are not given, so each bundled
model is reproduced by that one command.
"""

DEFAULTS: dict[str, dict] = {
    # Issue 13: fine-tuned from the corner-trained models in training/base/ (the
    # bundled models before it; see training/base/README.md) with samples over the
    # whole square.  A fresh 25k-step run with the same sampling was worse (see
    # nnhdl/models/README.md).
    "fpga_qb": {"steps": 4000, "batch": 32, "lr": 3e-3, "seed": 0, "init": "training/base/fpga_qb.npz"},
    "fpga_po2": {"steps": 4000, "batch": 32, "lr": 1e-3, "seed": 0, "init": "training/base/fpga_po2.npz"},
    # Unchanged since commit de686ff: this command reproduces it with that commit's
    # data sampling (corners 50 %, edges 50 %, no interior); both issue-13 runs were worse.
    "mcu": {"steps": 50000, "batch": 32, "lr": 1e-2, "seed": 0},
    # The >= 48k-MAC network of "Hardware at scale": fine-tuned from fpga_qb embedded in it
    # (training/base/fpga_wide.npz, made by training.widen; see its docstring), sized to
    # finish within an hour on one shared core (nnhdl/models/README.md).
    "fpga_wide": {"steps": 6000, "batch": 16, "lr": 3e-3, "seed": 0, "init": "training/base/fpga_wide.npz"},
}
#: For layer-list JSON files and anything not listed above.
GENERIC = {"steps": 3000, "batch": 32, "lr": 3e-3, "seed": 0}
