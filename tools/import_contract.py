"""The import contract of snn4_ros: layers that import one way, rclpy only in ``ros``, no
private names across modules, no cycles.

    python tools/import_contract.py        # prints every violation; exit 1 if any

Rules (every import counts: module level, inside functions, under ``TYPE_CHECKING``):

1. Every module lives in one layer folder, in this order:
   ``events -> models -> runtime -> eval -> dashboard -> ros -> app``.
   A module may import its own layer and the layers before it, never a later one.
   (The package root ``snn4_ros/__init__.py`` imports nothing of the package.)
2. ROS Python packages (rclpy, rcl_interfaces, launch, ament_index_python, any ``*_msgs``,
   ``*_srvs`` or ``*_interfaces`` message package) are imported only in ``ros``.
3. No module imports another module's private name (``from x import _y``, ``import x._y``).
4. No import cycle between modules (lazy imports included).
5. The modules the Lava bridge loads from their files (``BRIDGE_SHARED``: it runs in the
   Python 3.10 Lava venv without snn4_ros) import only the standard library and rclpy.

Read with ``ast`` only: nothing is imported, so the check runs without torch or ROS.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "snn4_ros"
LAYERS = ("events", "models", "runtime", "eval", "dashboard", "ros", "app")
ROS_LAYER = "ros"
ROS_PACKAGES = {"rclpy", "rcl_interfaces", "rosidl_runtime_py", "rosidl_parser", "launch",
                "launch_ros", "ament_index_python", "builtin_interfaces", "rosgraph_msgs"}
ROS_SUFFIXES = ("_msgs", "_srvs", "_interfaces")
BRIDGE_SHARED = ("snn4_ros.ros.topics", "snn4_ros.ros.worker")


@dataclass
class Import:
    module: str            # the importing module
    target: str            # the imported module (resolved; a name's own module if it is one)
    names: tuple[str, ...]  # names taken from it (empty for ``import x``)
    line: int
    lazy: bool             # inside a function or class body


def load_package(root: Path) -> dict[str, tuple[str, bool]]:
    """``{module: (source, is_package)}`` for every ``.py`` under the package folder."""
    out = {}
    for p in sorted(root.rglob("*.py")):
        parts = p.relative_to(root.parent).with_suffix("").parts
        is_pkg = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_pkg else parts)
        out[name] = (p.read_text(), is_pkg)
    return out


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def imports_of(module: str, source: str, is_pkg: bool, known: set[str]) -> list[Import]:
    tree = ast.parse(source)
    lazy_nodes = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for sub in ast.walk(node):
                if sub is not node:
                    lazy_nodes.add(id(sub))
    out = []
    for node in ast.walk(tree):
        lazy = id(node) in lazy_nodes
        if isinstance(node, ast.Import):
            for a in node.names:
                out.append(Import(module, a.name, (), node.lineno, lazy))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                pkg = pkg[:len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            names = tuple(a.name for a in node.names)
            plain = [n for n in names if f"{base}.{n}" not in known]
            for n in names:
                if f"{base}.{n}" in known:           # ``from pkg import submodule``
                    out.append(Import(module, f"{base}.{n}", (), node.lineno, lazy))
            if plain or not names:
                out.append(Import(module, base, tuple(plain), node.lineno, lazy))
    return out


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def _is_ros(target: str) -> bool:
    top = target.split(".")[0]
    return top in ROS_PACKAGES or top.endswith(ROS_SUFFIXES)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, comps, counter = {}, {}, set(), [], [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        comps.append(sorted(comp))
    return comps


def check(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """Every violation of the contract, one line each (empty: the contract holds)."""
    known = set(sources)
    errors = []
    edges: dict[str, set[str]] = {m: set() for m in sources}
    for module, (source, is_pkg) in sorted(sources.items()):
        own = layer_of(module)
        if own is None and module != PACKAGE:
            errors.append(f"{module}: not in a layer folder ({', '.join(LAYERS)})")
        for imp in imports_of(module, source, is_pkg, known):
            where = f"{module}:{imp.line}{' (lazy)' if imp.lazy else ''}"
            top = imp.target.split(".")[0]
            if module in BRIDGE_SHARED and top not in sys.stdlib_module_names | {
                    "__future__", "rclpy"}:
                errors.append(f"{where}: imports {imp.target}; the Lava bridge loads this "
                              "module by file: standard library and rclpy only")
            if _is_ros(imp.target) and own != ROS_LAYER:
                errors.append(f"{where}: imports {imp.target}; ROS packages only in "
                              f"{PACKAGE}.{ROS_LAYER}")
            if imp.target != PACKAGE and not imp.target.startswith(PACKAGE + "."):
                continue
            private = [n for n in imp.names if _is_private(n)]
            private += [p for p in imp.target.split(".") if _is_private(p)]
            if private:
                errors.append(f"{where}: imports the private name(s) {', '.join(private)} "
                              f"of {imp.target}")
            if imp.target == PACKAGE:
                continue
            if imp.target in known:
                edges[module].add(imp.target)
            theirs = layer_of(imp.target)
            if module == PACKAGE:
                errors.append(f"{where}: the package root imports {imp.target}")
            elif own is not None and theirs is not None and \
                    LAYERS.index(theirs) > LAYERS.index(own):
                errors.append(f"{where}: {own} imports {imp.target} from the later layer "
                              f"{theirs} (order: {' -> '.join(LAYERS)})")
    for comp in _cycles(edges):
        errors.append(f"import cycle: {' <-> '.join(comp)}")
    return errors


def main() -> int:
    root = Path(__file__).resolve().parents[1] / PACKAGE
    errors = check(load_package(root))
    for e in errors:
        print(e)
    print(f"import contract: {len(errors)} violation(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
