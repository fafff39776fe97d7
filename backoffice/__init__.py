"""Backoffice: the back office for the operators of a subscription SaaS platform."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

__version__ = "0.1.0"


def create_app(config: dict | None = None) -> Flask:
    """The app factory (backoffice/app.py), as `gunicorn 'backoffice:create_app()'` names it. Imported
    when called: every module of the package runs this file first, and the factory imports them all."""
    from backoffice.app import create_app as make

    return make(config)
