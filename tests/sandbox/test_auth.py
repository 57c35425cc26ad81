"""Per-system credentials, so connector auth can be tested: bearer, HTTP Basic, API key;
a wrong or missing credential is 401 and applies nothing."""

from __future__ import annotations

import base64

import httpx
import pytest
from litestar import Litestar

from tenant_runtime.sandbox import AuthConfig, SandboxConfig, create_sandbox_app
from tests.sandbox.calls import TRANSFER, state, stats_of


@pytest.fixture
def sandbox_app() -> Litestar:
    return create_sandbox_app(
        SandboxConfig(seed=7, auth={"erp": AuthConfig(kind="bearer", token="erp-token-1")})
    )


async def test_bearer_auth_refuses_missing_and_wrong_tokens(api: httpx.AsyncClient) -> None:
    missing = await api.post("/erp/create_transfer_order", json=TRANSFER)
    wrong = await api.post(
        "/erp/create_transfer_order", json=TRANSFER, headers={"Authorization": "Bearer erp-token-2"}
    )
    right = await api.post(
        "/erp/create_transfer_order", json=TRANSFER, headers={"Authorization": "Bearer erp-token-1"}
    )

    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="sandbox-erp"'
    assert "erp-token" not in missing.text + wrong.text
    assert len((await state(api))["erp"]["transfer_orders"]) == 1
    counts = await stats_of(api, "erp.create_transfer_order")
    assert (counts["unauthorized"], counts["effects_applied"]) == (2, 1)


async def test_other_systems_stay_open(api: httpx.AsyncClient) -> None:
    answer = await api.post("/crm/get_customer", json={"customer_id": "CUST-1"})
    assert answer.status_code == 200


async def test_basic_auth_set_at_runtime(api: httpx.AsyncClient) -> None:
    configured = await api.post(
        "/_sandbox/auth/pos", json={"kind": "basic", "username": "svc", "password": "pw"}
    )
    assert configured.json() == {"erp": "bearer", "pos": "basic"}

    def basic(user: str, password: str) -> dict[str, str]:
        return {
            "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        }

    body = {"store_id": "S-101", "skus": ["SKU-10001"], "window_start": "a", "window_end": "b"}
    wrong = await api.post(
        "/pos/get_count_window_activity", json=body, headers=basic("svc", "nope")
    )
    garbled = await api.post(
        "/pos/get_count_window_activity", json=body, headers={"Authorization": "Basic !!"}
    )
    right = await api.post("/pos/get_count_window_activity", json=body, headers=basic("svc", "pw"))

    assert (wrong.status_code, garbled.status_code, right.status_code) == (401, 401, 200)
    assert wrong.headers["WWW-Authenticate"] == 'Basic realm="sandbox-pos"'
    await api.delete("/_sandbox/auth/pos")
    assert (await api.post("/pos/get_count_window_activity", json=body)).status_code == 200


async def test_api_key_auth_in_a_named_header(api: httpx.AsyncClient) -> None:
    await api.post(
        "/_sandbox/auth/payments", json={"kind": "api_key", "header": "X-Gateway-Key", "key": "gk"}
    )
    body = {"transaction_ref": "PAY-1"}

    missing = await api.post("/payments/get_transaction", json=body)
    right = await api.post("/payments/get_transaction", json=body, headers={"X-Gateway-Key": "gk"})

    assert missing.status_code == 401 and "X-Gateway-Key" in missing.json()["detail"]
    assert right.status_code == 200


async def test_auth_settings_never_show_values_and_are_checked(api: httpx.AsyncClient) -> None:
    listing = await api.get("/_sandbox/auth")
    incomplete = await api.post("/_sandbox/auth/crm", json={"kind": "bearer"})
    unknown = await api.post("/_sandbox/auth/mainframe", json={"kind": "bearer", "token": "t"})

    assert listing.json() == {"erp": "bearer"}
    assert incomplete.status_code == 422 and "token" in incomplete.json()["detail"]
    assert unknown.status_code == 404


def test_a_config_with_incomplete_credentials_is_refused() -> None:
    with pytest.raises(ValueError, match="username"):
        create_sandbox_app(SandboxConfig(auth={"hr": AuthConfig(kind="basic", password="x")}))
