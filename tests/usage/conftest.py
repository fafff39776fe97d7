from __future__ import annotations

import pytest

from tests.usage.helpers import make_api


@pytest.fixture
def api(app, client):
    return make_api(client)
