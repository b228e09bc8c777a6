"""Register, login, logout, throttling and token handling over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from market.models import AuthToken, District, DistrictLevel, User
from market.services.runtime import Runtime
from tests.market.conftest import PASSWORD, City, next_phone


@pytest.fixture
async def district() -> District:
    return await District.create(code="north", name="North", level=DistrictLevel.district)


def registration(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "phone": next_phone(),
        "password": PASSWORD,
        "name": "Li Hua",
        "role": "family",
        "district_code": "north",
    }
    body.update(overrides)
    return body


class TestRegister:
    async def test_family_member_is_active(
        self, client: httpx.AsyncClient, district: District
    ) -> None:
        response = await client.post("/api/v1/auth/register", json=registration())
        assert response.status_code == 201
        assert response.json()["user"]["status"] == "active"

    async def test_volunteer_awaits_vetting(
        self, client: httpx.AsyncClient, district: District
    ) -> None:
        response = await client.post(
            "/api/v1/auth/register", json=registration(role="volunteer", birth_year=1990)
        )
        assert response.json()["user"]["status"] == "pending"

    async def test_volunteer_needs_a_birth_year(
        self, client: httpx.AsyncClient, district: District
    ) -> None:
        response = await client.post("/api/v1/auth/register", json=registration(role="volunteer"))
        assert response.status_code == 422
        assert response.json()["error"]["details"] == [
            {"field": "birth_year", "problem": "is required for a volunteer"}
        ]
        assert await User.all().count() == 0

    async def test_volunteer_below_the_deposit_age_is_refused(
        self, client: httpx.AsyncClient, district: District
    ) -> None:
        young = datetime.now(UTC).year - 17
        response = await client.post(
            "/api/v1/auth/register", json=registration(role="volunteer", birth_year=young)
        )
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "policy.forbids"
        assert error["details"] == {"rule": "time_bank.deposit_min_age", "policy_version": 0}
        assert await User.all().count() == 0

    async def test_elder_needs_birth_year_and_place(
        self, client: httpx.AsyncClient, district: District
    ) -> None:
        response = await client.post("/api/v1/auth/register", json=registration(role="elder"))
        assert response.status_code == 422
        fields = {d["field"] for d in response.json()["error"]["details"]}
        assert fields == {"gender", "birth_year", "latitude", "longitude"}
        assert await User.all().count() == 0

    async def test_duplicate_phone_conflicts(
        self, client: httpx.AsyncClient, district: District
    ) -> None:
        body = registration()
        await client.post("/api/v1/auth/register", json=body)
        again = await client.post(
            "/api/v1/auth/register",
            json={**body, "phone": str(body["phone"])[:3] + " " + str(body["phone"])[3:]},
        )
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "phone_taken"
        assert await User.all().count() == 1

    async def test_admin_role_cannot_self_register(
        self, client: httpx.AsyncClient, district: District
    ) -> None:
        response = await client.post(
            "/api/v1/auth/register", json=registration(role="centre_admin")
        )
        assert response.status_code == 422
        assert await User.all().count() == 0

    async def test_weak_password_refused(
        self, client: httpx.AsyncClient, district: District
    ) -> None:
        response = await client.post(
            "/api/v1/auth/register", json=registration(password="12345678")
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "password_weak"
        assert await User.all().count() == 0

    async def test_unknown_district_refused(
        self, client: httpx.AsyncClient, district: District
    ) -> None:
        response = await client.post(
            "/api/v1/auth/register", json=registration(district_code="nowhere")
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "unknown_district"


class TestLogin:
    async def test_right_password_gives_token(self, client: httpx.AsyncClient, city: City) -> None:
        actor = city["family"]
        response = await client.post(
            "/api/v1/auth/login", json={"phone": actor.phone, "password": PASSWORD}
        )
        assert response.status_code == 200
        me = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {response.json()['token']}"}
        )
        assert me.json()["user"]["id"] == str(actor.user.id)

    async def test_wrong_password_is_401(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.post(
            "/api/v1/auth/login", json={"phone": city["family"].phone, "password": "wrong pass 1"}
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_credentials"

    async def test_unknown_phone_is_the_same_401(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        response = await client.post(
            "/api/v1/auth/login", json={"phone": "13000000000", "password": PASSWORD}
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_credentials"

    async def test_repeated_failures_are_throttled(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        phone = city["volunteer"].phone
        statuses = [
            (
                await client.post(
                    "/api/v1/auth/login", json={"phone": phone, "password": "nope nope 1"}
                )
            ).status_code
            for _ in range(8)
        ]
        assert statuses[0] == 401
        assert statuses[-1] == 429
        locked = await client.post(
            "/api/v1/auth/login", json={"phone": phone, "password": PASSWORD}
        )
        assert locked.status_code == 429
        assert int(locked.headers["Retry-After"]) > 0


class TestLogout:
    async def test_token_is_revoked(self, client: httpx.AsyncClient, city: City) -> None:
        actor = city["elder"]
        assert (await client.post("/api/v1/auth/logout", headers=actor.headers)).status_code == 204
        after = await client.get("/api/v1/auth/me", headers=actor.headers)
        assert after.status_code == 401
        assert after.json()["error"]["code"] == "token_revoked"


class TestTokens:
    async def test_missing_token(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/auth/me")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token_missing"

    async def test_tampered_token(self, client: httpx.AsyncClient, city: City) -> None:
        token = city["elder"].token
        forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
        response = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}
        )
        assert response.json()["error"]["code"] == "token_invalid"

    async def test_expired_token(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        user = city["elder"].user
        issued = datetime.now(UTC) - timedelta(hours=2)
        token, claims = runtime.tokens.issue(
            user.id, user.role.value, now=issued, ttl=timedelta(hours=1)
        )
        await AuthToken.create(
            jti=claims.jti, user=user, issued_at=issued, expires_at=claims.expires_at
        )
        response = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token_expired"


class TestRegistrationLimit:
    async def test_one_address_may_register_only_so_many(
        self, client: httpx.AsyncClient, district: District
    ) -> None:
        statuses = [
            (await client.post("/api/v1/auth/register", json=registration())).status_code
            for _ in range(21)
        ]
        assert statuses[:20] == [201] * 20
        assert statuses[20] == 429
        assert await User.all().count() == 20
