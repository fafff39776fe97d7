"""The ledger's shape, read from the syntax trees of the package's modules: data flows one way
(stripe depends on the ledger, never the reverse), and each table the ledger keeps has one
writer (DESIGN.md: inputs → append-only stores → projections; nothing else writes them)."""
from __future__ import annotations

import ast
import re
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


def test_the_ledger_imports_nothing_from_stripe():
    offending = {module: sorted(n for n in _imported(module, tree)
                                if n == "backoffice.stripe" or n.startswith("backoffice.stripe."))
                 for module, tree in _modules("ledger").items()}
    assert {m: names for m, names in offending.items() if names} == {}


def test_the_walk_sees_every_kind_of_import():
    tree = ast.parse("import backoffice.stripe.gateway\n"
                     "from backoffice.stripe import gateway\n"
                     "def f():\n    from ..stripe.models import JobRun\n")
    names = _imported("backoffice.ledger.archive", tree)
    assert {"backoffice.stripe.gateway", "backoffice.stripe", "backoffice.stripe.models",
            "backoffice.stripe.models.JobRun"} <= names


# Calls that insert the rows of the model or table given as an argument.
INSERTING_CALLS = frozenset({"insert", "pg_insert", "sqlite_insert", "insert_rows", "bulk_insert_mappings",
                             "bulk_save_objects", "_insert"})


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _scope_nodes(scope: ast.AST):
    """The nodes of a module or function, not those of the functions and classes inside it."""
    for child in ast.iter_child_nodes(scope):
        yield child
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            yield from _scope_nodes(child)


def _writes(scope: ast.AST, model: str | None, table: str, aliases: frozenset[str] = frozenset()) -> bool:
    """Whether code in `scope` (or in a function inside it) constructs `model` or inserts into its
    table: a call of `model(...)`, an inserting call naming `model`, `model.__table__` or a name
    bound to it in this scope or an enclosing one, or SQL text that inserts into `table` (all a
    `model` of None looks for)."""
    nodes = list(_scope_nodes(scope))
    aliases = aliases | {_name(target) for node in nodes if isinstance(node, ast.Assign)
                         and isinstance(node.value, ast.Attribute) and node.value.attr == "__table__"
                         and _name(node.value.value) == model for target in node.targets}

    def names_the_table(arg: ast.AST) -> bool:
        return _name(arg) in aliases or _name(arg) == model or (
            isinstance(arg, ast.Attribute) and arg.attr == "__table__" and _name(arg.value) == model)

    for node in nodes:
        if model is not None and isinstance(node, ast.Call) and (_name(node.func) == model or (
                _name(node.func) in INSERTING_CALLS and any(names_the_table(arg) for arg in node.args))):
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and re.search(rf"\binsert\s+into\s+\"?{table}\b", node.value, re.IGNORECASE):
            return True
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef) \
                and _writes(node, model, table, aliases):
            return True
    return False


def _imports_name(tree: ast.Module, defined_in: str, name: str) -> bool:
    return any(isinstance(node, ast.ImportFrom) and node.module == defined_in
               and any(alias.name == name for alias in node.names) for node in ast.walk(tree))


def _writers(model: str, table: str, defined_in: str = "backoffice.ledger.models") -> set[str]:
    """The modules of the package that write rows of `model` (see `_writes`): those that import
    it (another module's class of the same name is not it), and any SQL text."""
    found = set()
    for module, tree in _modules().items():
        if module == defined_in:
            continue
        if _writes(tree, model if _imports_name(tree, defined_in, model) else None, table):
            found.add(module)
    return found


def test_the_archive_is_the_only_writer_of_archive_rows():
    assert _writers("StripeEvent", "stripe_events") == {"backoffice.ledger.archive"}


PROJECTIONS = "backoffice.ledger.projections"


def test_the_projections_are_the_only_writer_of_subscriptions_payment_transactions_and_plans():
    assert _writers("Subscription", "subscriptions") == {PROJECTIONS}
    assert _writers("PaymentTransaction", "payment_transactions", "backoffice.invoices.models") == {PROJECTIONS}
    assert _writers("Plan", "plans") == {PROJECTIONS}


def test_the_replay_is_the_only_writer_of_ledger_rows():
    assert _writers("BillingEvent", "billing_events") == {"backoffice.ledger.replay"}


def test_the_writer_walk_sees_each_kind_of_write(tmp_path, monkeypatch):
    source = {
        "a": "db.session.add(StripeEvent(id='evt'))",
        "b": "t = StripeEvent.__table__\ndb.session.execute(pg_insert(t).values(rows))",
        "c": "insert_rows(StripeEvent.__table__, rows)",
        "d": "db.session.execute(db.insert(StripeEvent), rows)",
        "e": "db.session.execute(db.text('INSERT INTO stripe_events (id) VALUES (:id)'))",
        "f": "db.session.execute(db.update(StripeEvent).values(state='processed'))",
        "g": ("def f():\n    t = StripeEvent.__table__\n    db.session.execute(db.update(t))\n"
              "def g():\n    t = BillingEvent.__table__\n    insert_rows(t, rows)\n"),
    }
    imports = "from backoffice.ledger.models import StripeEvent\n"
    trees = {f"backoffice.{name}": ast.parse(imports + text) for name, text in source.items()}
    trees["backoffice.h"] = ast.parse("class StripeEvent:\n    pass\nStripeEvent()")  # another class
    monkeypatch.setattr(f"{__name__}._modules", lambda under="": trees)
    assert _writers("StripeEvent", "stripe_events") == {f"backoffice.{n}" for n in "abcde"}
