"""The README's layer diagram, enforced: imports point down only, and no private names cross packages."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "manifold"

# lower number = lower layer; a package may import its own layer's modules only within itself
LAYERS = {
    "checks": 0,
    "linalg": 1,
    "metrics": 0,
    "optim": 0,
    "thorax": 0,
    "operators": 1,
    "data": 2,
    "eit": 2,
    "models": 3,
    "train": 4,
    "baselines": 5,
    "geometry": 6,
    "solve": 6,
    "uncertainty": 7,
}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else ""


def _violations():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        mine = _package(path)
        if mine not in LAYERS:
            continue
        for line, module, names in _imports(path):
            parts = module.split(".")
            if parts[0] != "manifold" or len(parts) < 2:
                continue
            other = parts[1]
            if other == mine or other not in LAYERS:
                continue
            where = f"{path.relative_to(ROOT.parent)}:{line}"
            if LAYERS[other] >= LAYERS[mine]:
                found.append(f"{where}: {mine} (layer {LAYERS[mine]}) imports {module} (layer {LAYERS[other]})")
            private = [p for p in parts[2:] if p.startswith("_")] + [n for n in names if n.startswith("_")]
            if private:
                found.append(f"{where}: {mine} imports the private {module} {names}")
    return found


def test_every_package_has_a_layer():
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    packages |= {p.stem for p in ROOT.glob("*.py") if p.name != "__init__.py"}
    assert packages <= set(LAYERS), f"add {sorted(packages - set(LAYERS))} to LAYERS (and the README diagram)"


def test_imports_point_down_and_stay_public():
    found = _violations()
    assert not found, "layer violations:\n" + "\n".join(found)


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_package_imports_alone(package):
    """Each package imports in a fresh interpreter without importing a higher layer."""
    import subprocess
    import sys

    code = (
        "import sys, importlib; importlib.import_module('manifold.' + sys.argv[1]); "
        "print(' '.join(sorted({m.split('.')[1] for m in sys.modules if m.startswith('manifold.')})))"
    )
    out = subprocess.run([sys.executable, "-c", code, package], capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    above = {p for p in loaded if p in LAYERS and p != package and LAYERS[p] >= LAYERS[package]}
    assert not above, f"importing manifold.{package} loads {sorted(above)}"
