from __future__ import annotations

import click


@click.command("demo")
def demo() -> None:
    """Create instance/demo.db with a realistic data set and serve it."""
    raise click.ClickException("not yet")
