"""Imports every API endpoint module so its routes register on the api blueprint.
Add one line per module (e.g. `from backoffice.api import metrics`)."""
