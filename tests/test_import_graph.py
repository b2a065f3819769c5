"""No import circles in mcu/ and soc/, and every module of them imports on its own.

The graph counts every ``import`` statement of a package's modules, the ones inside functions
too (a lazy import only hides a circle until the day someone moves it to the top).
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mcu", "soc")


def _modules() -> list[str]:
    return sorted(f"{pkg}.{p.stem}" for pkg in PACKAGES for p in (ROOT / pkg).glob("*.py") if p.stem not in ("__init__", "__main__"))


def _imports(module: str) -> set[str]:
    """The package-local modules ``module`` imports anywhere in its text."""
    pkg = module.split(".")[0]
    tree = ast.parse((ROOT / pkg / (module.split(".")[1] + ".py")).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = f"{pkg}.{node.module}" if node.level == 1 and node.module else \
                pkg if node.level == 1 else node.module or ""
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n in MODULES}
    return found - {module}


MODULES = set(_modules())


def test_no_import_circles():
    graph = {m: _imports(m) for m in MODULES}
    circles = []

    def visit(m, path):
        for n in sorted(graph[m]):
            if n in path:
                circles.append(" -> ".join(path[path.index(n):] + [n]))
            elif n not in done:
                visit(n, path + [n])
        done.add(m)

    done: set[str] = set()
    for m in sorted(graph):
        if m not in done:
            visit(m, [m])
    assert not circles, "import circles:\n" + "\n".join(sorted(set(circles)))


@pytest.mark.parametrize("module", _modules())
def test_module_imports_alone(module):
    p = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]


def test_weight_loader_needs_no_gateware_libraries():
    """The UART weight loader (soc.host) and the model's hardware identity (shape id, weight image) are plain
    data: importing and using them loads neither Amaranth, Migen nor LiteX (nor JAX)."""
    code = ("import sys; import soc.host; from nnhdl.configs import random_model; "
            "m = random_model('fpga_qb', seed=0); m.shape_id(); m.model_id(); m.weight_image(); "
            "heavy = sorted({n.split('.')[0] for n in sys.modules} & {'amaranth', 'migen', 'litex', 'jax'}); "
            "print(','.join(heavy))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() == ""
