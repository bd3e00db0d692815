"""Smoke tests of the demo shop: plain pytest, with pytest-stagegate's markers and fixtures."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.smoke


@pytest.mark.critical
def test_health(http):
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.critical
def test_product_list(http):
    """The list's shape; whether it holds anything under load is the gate's expectation."""
    response = http.get("/api/products")
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == len(body["items"])


def test_product_detail(http, target_vars):
    product_id = target_vars["product_id"]
    response = http.get(f"/api/products/{product_id}")
    assert response.status_code == 200
    assert response.json()["id"] == product_id


def test_unknown_product_is_404(http):
    assert http.get("/api/products/999999").status_code == 404


@pytest.mark.destructive
def test_add_to_cart(http, target_vars):
    """Writes data: skipped (and counted) on a protected target such as production."""
    cart = f"/api/cart/{target_vars['cart_id']}"
    token = http.post("/api/login", json={"user": "smoke-test"}).json()["access_token"]
    response = http.post(
        cart, json={"sku": "SKU-007"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201
    assert "SKU-007" in [item["sku"] for item in response.json()["items"]]


@pytest.mark.targets("local")
def test_root_lists_endpoints(http):
    """Runs only on the local target."""
    assert "/healthz" in http.get("/").json()["see"]


@pytest.mark.anyio
async def test_product_list_async(ahttp):
    response = await ahttp.get("/api/products")
    assert response.status_code == 200


def test_target_fixtures(target, base_url):
    assert base_url == target.base_url
    assert base_url.startswith(("http://", "https://"))
