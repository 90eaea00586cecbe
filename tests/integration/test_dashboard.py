"""The dashboard before anything is built: every page says what to run, on both
deployments (the built pages are tested in test_api.py, on the API's built deployments)."""

import pytest

from tests.integration.helpers import dashboard_page

PAGES = ("overview", "trends", "map", "aircraft", "causes", "explorer", "quality", "model")


@pytest.mark.parametrize("page", PAGES)
def test_an_empty_warehouse_says_what_to_run(deployment, page):
    at = dashboard_page(page, state="CA")
    assert any(w.value.startswith("Nothing to show yet") for w in at.warning), (page, [w.value for w in at.warning])
    assert "ntsb build" in " ".join(m.value for m in at.markdown)
