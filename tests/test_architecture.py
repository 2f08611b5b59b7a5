"""The package layers hold: every import between adcreative's packages (function-level imports included) goes
down a layer, never sideways into a sibling stage or up into orchestration, and there is no loop."""

from __future__ import annotations

import ast
from collections import defaultdict

from tests.paths import REPO

SRC = REPO / "src" / "adcreative"
BASE = {"config", "core"}
# what each top-level package may import (besides itself); stages sit in two chains joined only above them
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "core": {"config"},
    "report": BASE,
    "executors": BASE,
    "catalogue": BASE,
    "generate": BASE | {"catalogue"},
    "inspect": BASE | {"catalogue", "generate", "report"},
    "tune": BASE | {"catalogue", "generate", "inspect", "report"},
    "represent": BASE | {"catalogue", "generate", "report"},
    "select": BASE | {"represent", "report"},
    "explain": BASE | {"represent", "select", "report"},
    "console": BASE | {"catalogue", "generate", "inspect", "report"},
    "pipelines": BASE | {"catalogue", "generate", "inspect", "tune", "represent", "select", "explain", "report",
                         "executors"},
    "cli": {"config", "core", "catalogue", "generate", "inspect", "tune", "represent", "select", "explain", "report",
            "executors", "pipelines", "console"},
    "__main__": {"cli"},
    "__init__": set(),
}


def _package(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "adcreative":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def import_graph() -> dict[str, dict[str, set[str]]]:
    """package → imported package → the modules that import it (every import statement, at any depth)."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for f in sorted(SRC.rglob("*.py")):
        rel = f.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        pkg = _package(module)
        assert pkg is not None
        here = module.split(".") if f.name == "__init__.py" else module.split(".")[:-1]
        for node in ast.walk(ast.parse(f.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1]) if node.level else ""
                mod = ".".join(p for p in (base, node.module or "") if p)
                targets = [f"{mod}.{a.name}" if mod == "adcreative" else mod for a in node.names]
            for t in targets:
                dep = _package(t)
                if dep is not None and dep != pkg:
                    graph[pkg][dep].add(module)
    return graph


def test_every_package_is_known() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    packages |= {p.stem for p in SRC.glob("*.py")}
    assert packages - {"assets"} <= set(ALLOWED), f"add {sorted(packages - set(ALLOWED))} to ALLOWED"


def test_imports_go_down_the_layers_only() -> None:
    bad = [f"{pkg} → {dep} (in {', '.join(sorted(mods))})"
           for pkg, deps in import_graph().items() for dep, mods in deps.items() if dep not in ALLOWED[pkg]]
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_no_loop_between_packages() -> None:
    graph = {pkg: set(deps) for pkg, deps in import_graph().items()}

    def reaches(a: str, b: str) -> bool:
        seen, todo = set(), [a]
        while todo:
            for n in graph.get(todo.pop(), ()):
                if n == b:
                    return True
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        return False

    loops = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if reaches(b, a)})
    assert not loops, f"package loops: {loops}"


if __name__ == "__main__":  # print the package-level graph (for docs and closing notes)
    for pkg, deps in sorted(import_graph().items()):
        print(f"{pkg:<10} → {', '.join(sorted(deps))}")
