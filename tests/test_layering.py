"""The package layering: every import of every module (function-level ones included) goes down the layers,
and no modules import each other in a cycle.

The order is written once, here (``LAYERS``, lowest first; docs/architecture.md explains it). A package may
import the packages of strictly lower layers only: packages of one layer are independent of each other. Every
package and top-level module of ``socialmirror`` must be placed in a layer, so a new one is placed on purpose.
"""
from __future__ import annotations

import ast
from pathlib import Path

import socialmirror

PACKAGE = Path(socialmirror.__file__).resolve().parent

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),                                               # the exception base: no project imports
    ("io", "paths", "config", "windows"),                      # foundation
    ("geometry",),                                             # rotations, cameras
    ("body",),                                                 # body models, skeleton, keypoint formats, IK
    ("losses",),                                               # robust penalties, body spheres
    ("data", "perception", "semantics", "diffusion", "metrics"),
    ("models",),                                               # the networks and their bundle
    ("inference", "training", "render"),
    ("pipeline",),                                             # the stages of a reconstruction
    ("api",),
    ("evaluation", "demo", "batch", "live", "socialmirror"),           # "socialmirror": the package's own __init__
    ("cli",),
    ("__main__",),
)
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}


def find_modules(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module under ``package_dir`` (a package is its ``__init__``)."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = (package_dir.name,) + path.relative_to(package_dir).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def find_imports(module: str, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported module of the package, line) for every import statement anywhere in ``module``: module
    level, inside functions and classes, under ``try`` or ``if TYPE_CHECKING``; relative imports resolved,
    ``from pkg import mod`` read as importing the module ``pkg.mod``."""
    root = module.split(".")[0]
    path = modules[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def known(name: str) -> str:  # the longest prefix that is a module of the package
        while name not in modules:
            name = name.rpartition(".")[0]
        return name

    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == root]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - (node.level - 1)] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != root:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((submodule if submodule in modules else base, node.lineno))
    resolved = [(known(name), line) for name, line in found if known(name) != module]
    return list(dict.fromkeys(resolved))  # one entry per module and line


MODULES = find_modules(PACKAGE)


def imports(module: str) -> list[tuple[str, int]]:
    return find_imports(module, MODULES)


def layer_name(module: str) -> str:
    """The package (or top-level module) of ``socialmirror`` a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "socialmirror"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_every_package_has_a_layer():
    unplaced = sorted({layer_name(m) for m in MODULES} - set(LAYER))
    assert not unplaced, f"place these in LAYERS (tests/test_layering.py): {unplaced}"


def test_no_module_imports_itself_back():
    graph = {m: {target for target, _ in imports(m)} for m in MODULES}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle between modules: " + " -> ".join(cycle)


def test_no_package_cycle():
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        for target, _ in imports(module):
            if layer_name(target) != layer_name(module):
                graph.setdefault(layer_name(module), set()).add(layer_name(target))
    cycle = _cycle(graph)
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle)


def test_imports_go_down_the_layers():
    wrong = []
    for module in MODULES:
        here = layer_name(module)
        for target, line in imports(module):
            there = layer_name(target)
            if there != here and LAYER.get(there, -1) >= LAYER.get(here, -1):
                wrong.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports {target} "
                             f"({here}: layer {LAYER.get(here)}, {there}: layer {LAYER.get(there)})")
    assert not wrong, "imports that do not go down the layers:\n" + "\n".join(wrong)


def test_the_parser_sees_every_kind_of_import(tmp_path):
    """Function-level, relative and ``from package import module`` imports are found and resolved; cycles are
    found."""
    pkg = tmp_path / "pkg"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("from .leaf import X\n")
    (pkg / "low" / "leaf.py").write_text("X = 1\n")
    (pkg / "high.py").write_text("import os\nfrom pkg import low\n\n\ndef f():\n    from pkg.low.leaf import X\n"
                                 "    import pkg.low.leaf.X\n    return X\n")
    modules = find_modules(pkg)
    assert set(modules) == {"pkg", "pkg.low", "pkg.low.leaf", "pkg.high"}
    assert find_imports("pkg.low", modules) == [("pkg.low.leaf", 1)]
    assert find_imports("pkg.high", modules) == [("pkg.low", 2), ("pkg.low.leaf", 6), ("pkg.low.leaf", 7)]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
