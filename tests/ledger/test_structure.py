"""The ledger's shape, read from the syntax trees of the package's modules: data flows one way
(stripe_sync depends on the ledger, never the reverse)."""
from __future__ import annotations

import ast
from pathlib import Path

import backoffice

PACKAGE = Path(backoffice.__file__).parent


def _modules(under: str = "") -> dict[str, ast.Module]:
    """Dotted module name → its syntax tree, for every module of the package under `under`."""
    root = PACKAGE / under
    found = {}
    for path in sorted(root.rglob("*.py")):
        name = ".".join(("backoffice", *path.relative_to(PACKAGE).with_suffix("").parts))
        found[name.removesuffix(".__init__")] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return found


def _imported(module: str, tree: ast.Module) -> set[str]:
    """Every module a module imports, at the top or inside a function, absolute or relative."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.rsplit(".", node.level)[0]
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_ledger_imports_nothing_from_stripe_sync():
    offending = {module: sorted(n for n in _imported(module, tree)
                                if n == "backoffice.stripe_sync" or n.startswith("backoffice.stripe_sync."))
                 for module, tree in _modules("ledger").items()}
    assert {m: names for m, names in offending.items() if names} == {}


def test_the_walk_sees_every_kind_of_import():
    tree = ast.parse("import backoffice.stripe_sync.gateway\n"
                     "from backoffice.stripe_sync import gateway\n"
                     "def f():\n    from ..stripe_sync.models import JobRun\n")
    names = _imported("backoffice.ledger.archive", tree)
    assert {"backoffice.stripe_sync.gateway", "backoffice.stripe_sync", "backoffice.stripe_sync.models",
            "backoffice.stripe_sync.models.JobRun"} <= names
