"""The package's layering: no import cycles among the training modules (counting
imports inside functions), and a model module that names no backend."""

from __future__ import annotations

import ast
from pathlib import Path

import mlp_backends

PACKAGE = Path(mlp_backends.__file__).parent
CORE = {"model", "train", "checkpoint", "io", "distributed"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The package modules `path` imports anywhere in its code (functions included),
    as names relative to the package ("model", "bench.entries"); "" is the package."""
    name = _module_name(path)
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".") if name else []
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.removeprefix("mlp_backends.").removeprefix("mlp_backends")
                      for a in node.names if a.name.split(".")[0] == "mlp_backends"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] if node.level > 1 else package
                base = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "mlp_backends":
                base = node.module.removeprefix("mlp_backends").removeprefix(".")
            else:
                continue
            for alias in node.names:  # `from . import train` imports the module train
                sub = f"{base}.{alias.name}" if base else alias.name
                found.add(sub if (PACKAGE / sub.replace(".", "/")).with_suffix(".py").exists()
                          or (PACKAGE / sub.replace(".", "/")).is_dir() else base)
    return found


def import_graph() -> dict[str, set[str]]:
    # The package itself ("") is left out: it runs before any of its modules can be
    # imported, so a module reading e.g. `__version__` from it closes no cycle.
    graph = {_module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}
    return {m: {d for d in deps if d and d != m} for m, deps in graph.items() if m}


def cycles_through(graph: dict[str, set[str]], start: str) -> list[list[str]]:
    """Every simple import path from `start` back to itself."""
    found, stack = [], [(start, [start])]
    while stack:
        node, path = stack.pop()
        for dep in graph.get(node, ()):
            if dep == start:
                found.append(path + [start])
            elif dep not in path:
                stack.append((dep, path + [dep]))
    return found


def test_the_scanner_sees_imports_inside_functions_and_finds_a_cycle(tmp_path, monkeypatch):
    pkg = tmp_path / "mlp_backends"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import thing\n")
    (pkg / "c.py").write_text("import numpy\nfrom mlp_backends.a import x\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", pkg)
    graph = import_graph()
    assert graph == {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert cycles_through(graph, "a") == [["a", "b", "a"]]


def test_no_import_cycle_among_the_training_modules():
    graph = import_graph()
    assert CORE <= set(graph), "a module of the check was renamed: update CORE"
    cycles = [" -> ".join(c) for m in sorted(CORE) for c in cycles_through(graph, m)]
    assert not cycles, cycles


def test_the_model_names_no_backend_and_reaches_placement_through_the_hook():
    graph = import_graph()
    assert "distributed" not in graph["model"]
    tree = ast.parse((PACKAGE / "model.py").read_text())
    names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert "trainer" in names and "distributed" not in names
    strings = [n.value.lower() for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    code_strings = [s for s in strings if "\n" not in s]  # docstrings may tell the story
    for backend in ("dask", "cupy", "torch", "jax", "array_api_strict"):  # NumPy is the host format
        assert not any(backend in s for s in code_strings), backend


def test_the_cluster_loop_imports_only_public_names():
    tree = ast.parse((PACKAGE / "distributed.py").read_text())
    found = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level]
    assert found
    for node in found:
        assert all(not a.name.startswith("_") for a in node.names), ast.unparse(node)
