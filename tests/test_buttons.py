"""Every button is styled (issue 22 part 7: the reconciliation dialogs' buttons had only a modifier
class, `button-secondary`, which no rule styles): a `button-*` modifier always comes with the
base `button` class, and every modifier used is one the stylesheet defines."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLASSES = re.compile(r'class="([^"]*)"')


def _class_lists():
    for template in sorted((ROOT / "backoffice").rglob("*.html")):
        for match in CLASSES.finditer(template.read_text()):
            yield template.relative_to(ROOT), match.group(1).split()


def test_a_button_modifier_comes_with_the_base_class_and_is_styled():
    css = (ROOT / "static" / "css" / "app.css").read_text()
    defined = set(re.findall(r"\.(button-[a-z-]+)", css))
    unstyled = [(str(path), classes) for path, classes in _class_lists()
                if any(c.startswith("button-") for c in classes)
                and ("button" not in classes or not {c for c in classes if c.startswith("button-")} <= defined)]
    assert unstyled == []
