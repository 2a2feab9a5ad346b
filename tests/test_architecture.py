"""The package's layering: no two modules of the package import each other, even
through a chain and counting imports inside functions, and a model module that
names no backend."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mlp_backends

PACKAGE = Path(mlp_backends.__file__).parent


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path | None = None) -> set[str]:
    """The modules of the package at `root` (default: mlp_backends) that `path` imports
    anywhere in its code (functions included), as names relative to the package ("model",
    "bench.entries"); "" is the package."""
    root = root or PACKAGE
    top = root.name
    name = _module_name(path, root)
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".") if name else []
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.removeprefix(f"{top}.").removeprefix(top)
                      for a in node.names if a.name.split(".")[0] == top}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] if node.level > 1 else package
                base = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == top:
                base = node.module.removeprefix(top).removeprefix(".")
            else:
                continue
            for alias in node.names:  # `from . import train` imports the module train
                sub = f"{base}.{alias.name}" if base else alias.name
                found.add(sub if (root / sub.replace(".", "/")).with_suffix(".py").exists()
                          or (root / sub.replace(".", "/")).is_dir() else base)
    return found


def import_graph(root: Path | None = None) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, for the package at `root` (default: mlp_backends)."""
    root = root or PACKAGE
    # The package itself ("") is left out: it runs before any of its modules can be
    # imported, so a module reading e.g. `__version__` from it closes no cycle.
    graph = {_module_name(p, root): imports_of(p, root) for p in root.rglob("*.py")}
    return {m: {d for d in deps if d and d != m} for m, deps in graph.items() if m}


def a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as a path back to its start, or None when the graph
    has none (a depth-first search: a module met again while still on the path closes one)."""
    done: set[str] = set()
    for root in sorted(graph):
        path, stack = [], [(root, iter(sorted(graph[root])))]
        on_path = {root}
        path.append(root)
        while stack:
            node, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif dep in on_path:
                return path[path.index(dep):] + [dep]
            elif dep not in done and dep in graph:
                stack.append((dep, iter(sorted(graph[dep]))))
                path.append(dep)
                on_path.add(dep)
    return None


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
    assert a_cycle(graph) == ["a", "b", "a"]


def test_the_cycle_finder_follows_long_chains_and_passes_a_layered_graph():
    assert a_cycle({"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": {"b"}}) == ["b", "c", "d", "b"]
    assert a_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) is None


def test_no_two_modules_of_the_package_import_each_other():
    graph = import_graph()
    assert {"model", "train", "cli", "bench", "io", "distributed", "testing.suite"} <= set(graph)
    cycle = a_cycle(graph)
    assert cycle is None, "an import cycle (imports inside functions count): " + " -> ".join(cycle or ())


def test_no_two_built_in_plugin_modules_import_each_other():
    graph = import_graph(PACKAGE.parent / "backends")
    assert {"numpy", "numpy_inplace", "inplace_formulas", "cupy", "cupy_step"} <= set(graph)
    assert "inplace_formulas" in graph["numpy_inplace"]  # the scan follows `from backends.x import y`
    cycle = a_cycle(graph)
    assert cycle is None, "an import cycle (imports inside functions count): " + " -> ".join(cycle or ())


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


ROOT = PACKAGE.parent
FIRST_PARTY = ("mlp_backends", "backends")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_names(tree: ast.AST) -> set[str]:
    """Names a module defines: functions, classes, assigned names, attributes it assigns on
    `self` or `cls`, imports."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
              and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            found.add(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return found


def cross_module_private_uses(paths: list[Path]) -> list[str]:
    """Places where one module reaches into another's private names: `from x import _name`
    of a first-party module, or `obj._name` where `_name` is defined only in other modules."""
    trees = {p: ast.parse(p.read_text()) for p in paths}
    defined = {p: _defined_names(t) for p, t in trees.items()}
    found = []
    for path, tree in trees.items():
        elsewhere = set().union(*(d for p, d in defined.items() if p != path)) - defined[path]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in FIRST_PARTY):
                found += [f"{path.name}:{node.lineno}: {ast.unparse(node)}" for a in node.names if _private(a.name)]
            elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr in elsewhere:
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_private_name_scan_finds_imports_and_attributes_across_modules(tmp_path):
    (tmp_path / "a.py").write_text("class A:\n    def __init__(self):\n        self._state = 0\n"
                                   "    def _own(self):\n        return self._state\n")
    (tmp_path / "b.py").write_text("from .a import _helper\n\ndef f(a):\n    a._state = 1\n"
                                   "    return a._state, a.__class__\n")
    found = cross_module_private_uses(sorted(tmp_path.glob("*.py")))
    assert sorted(found) == ["b.py:1: from .a import _helper", "b.py:4: a._state", "b.py:5: a._state"]


def test_no_private_name_crosses_modules():
    paths = [p for d in ("mlp_backends", "backends", "benchmarks") for p in (ROOT / d).rglob("*.py")]
    paths += list((ROOT / "examples").rglob("*.py"))
    assert len(paths) > 40
    found = cross_module_private_uses(paths)
    assert not found, "use or add a public name: " + "; ".join(found)


def test_tests_use_no_private_helper_of_another_test_module():
    tests = Path(__file__).parent
    paths = sorted(tests.glob("*.py"))
    local = {p.stem for p in paths}
    found = [f"{p.name}:{n.lineno}: {ast.unparse(n)}" for p in paths for n in ast.walk(ast.parse(p.read_text()))
             if isinstance(n, ast.ImportFrom) and n.module in local and any(_private(a.name) for a in n.names)]
    assert not found, found


def test_every_public_exception_class_lives_in_errors_py():
    import builtins

    exceptions = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
    errors_tree = ast.parse((PACKAGE / "errors.py").read_text())
    exceptions |= {n.name for n in errors_tree.body if isinstance(n, ast.ClassDef)}
    assert {"DivergedError", "TrainingInterrupted", "FastPathError", "InputError"} <= exceptions
    found = [f"{p.relative_to(PACKAGE)}: {n.name}" for p in PACKAGE.rglob("*.py") if p.name != "errors.py"
             for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.ClassDef) and not _private(n.name)
             and any(ast.unparse(b).split(".")[-1] in exceptions for b in n.bases)]
    assert not found, found



def layout_paths(readme: str) -> list[str]:
    """The paths README's Layout table names in its first column. A cell may name several:
    `mlp_backends/nn.py`, `optim.py` (the second in the first one's folder)."""
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    paths = []
    for row in section.splitlines():
        cells = row.split("|")
        if len(cells) < 3 or not cells[1].strip().startswith("`"):
            continue
        folder = ""
        for name in cells[1].replace("`", " ").replace(",", " ").split():
            if "/" in name.rstrip("/"):
                folder = name.rstrip("/").rsplit("/", 1)[0] + "/"
                paths.append(name)
            else:
                paths.append(folder + name)
    return paths


def test_layout_paths_reads_folders_and_shared_folders():
    readme = ("# x\n\n## Layout\n\n| path | what |\n| --- | --- |\n| `a/b.py`, `c.py` | two |\n"
              "| `tests/` | tests |\n| `a/sub/` | a package |\n\n## Next\n| `z.py` | not here |\n")
    assert layout_paths(readme) == ["a/b.py", "a/c.py", "tests/", "a/sub/"]


def test_the_readme_layout_table_matches_the_tree():
    named = layout_paths((ROOT / "README.md").read_text())
    missing = [p for p in named if not (ROOT / p).exists()]
    assert not missing, f"README's Layout names paths that do not exist: {missing}"
    covered = {p.rstrip("/") for p in named}
    modules = [f"mlp_backends/{p.relative_to(PACKAGE)}" for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    modules += [f"mlp_backends/{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()]
    tracked = ["backends/", "benchmarks/", "tests/", "docs/", "examples/mlx_backend/", ".ci/run", "pyproject.toml"]
    unnamed = [m for m in modules + tracked if m.rstrip("/") not in covered]
    assert not unnamed, f"README's Layout table does not name: {unnamed}"


def _documented_methods(trees: dict[Path, ast.Module]) -> dict[str, set[str]]:
    """Class name -> its methods that have a docstring, over every module given."""
    found: dict[str, set[str]] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, set()).update(
                    m.name for m in node.body
                    if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(m))
    return found


def _is_setter(node) -> bool:
    """A property's setter or deleter: the property's getter holds its docstring."""
    return any(isinstance(d, ast.Attribute) and d.attr in ("setter", "deleter") for d in node.decorator_list)


def undocumented_public_names(paths: list[Path]) -> list[str]:
    """Public module-level functions and classes, and public methods of public classes, without
    a docstring. A method that overrides a documented method of a base class named in the
    package (a backend's `probe`, a callback's `on_epoch_end`) shares that method's docstring."""
    trees = {p: ast.parse(p.read_text()) for p in paths}
    documented = _documented_methods(trees)
    found = []
    for path, tree in trees.items():
        if not ast.get_docstring(tree):
            found.append(f"{path.name}: the module")
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or _private(node.name):
                continue
            if not ast.get_docstring(node):
                found.append(f"{path.name}:{node.lineno}: {node.name}")
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b).split(".")[-1] for b in node.bases}
                inherited = set().union(*(documented.get(b, set()) for b in bases))
                found += [f"{path.name}:{m.lineno}: {node.name}.{m.name}" for m in node.body
                          if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and not m.name.startswith("_")
                          and not ast.get_docstring(m) and m.name not in inherited and not _is_setter(m)]
    return found


def test_the_docstring_scan_finds_undocumented_names_and_lets_overrides_inherit(tmp_path):
    (tmp_path / "a.py").write_text('"""A."""\nclass Base:\n    """B."""\n    def run(self):\n        """Runs."""\n'
                                   '    def stop(self):\n        pass\n')
    (tmp_path / "b.py").write_text('"""B."""\nfrom a import Base\nclass Child(Base):\n    """C."""\n'
                                   '    def run(self):\n        pass\n    def _hidden(self):\n        pass\n'
                                   'def helper():\n    pass\n')
    found = undocumented_public_names(sorted(tmp_path.glob("*.py")))
    assert sorted(found) == ["a.py:6: Base.stop", "b.py:9: helper"]


def test_every_public_name_of_the_package_and_the_plugins_has_a_docstring():
    paths = [p for d in ("mlp_backends", "backends") for p in (ROOT / d).rglob("*.py")]
    found = undocumented_public_names(paths)
    assert not found, f"{len(found)} public names without a docstring: " + "; ".join(found)


def test_every_package_folder_is_one_the_distribution_installs():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for d in ("mlp_backends", "backends")
             for p in (ROOT / d).rglob("__init__.py")}
    assert {"mlp_backends", "mlp_backends.callbacks", "backends"} <= found
    assert found == listed, f"pyproject.toml's [tool.setuptools] packages must list {sorted(found)}"
