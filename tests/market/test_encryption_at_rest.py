"""Sensitive elder data never reaches the database in clear, and survives key rotation."""

from __future__ import annotations

import time

import httpx
import pytest
from tortoise.connection import get_connection

from market.models import ElderProfile, User
from market.security import keyfiles
from market.security.fieldcrypto import Keyring
from market.services.keys import ENCRYPTED_COLUMNS, rotate_field_key
from market.services.runtime import Runtime
from market.settings import Settings
from tests.market.conftest import City, next_phone

ID_NUMBER = "330106194001011234"
ADDRESS = "杭州市西湖区文三路 18 号 3 单元 502"
HEALTH = "高血压，服用氨氯地平"


async def register_elder(client: httpx.AsyncClient, city: City) -> tuple[str, str]:
    phone = next_phone()
    response = await client.post(
        "/api/v1/elders",
        headers=city["centre_admin"].headers,
        json={
            "name": "Zhang",
            "district_id": str(city.east_community.id),
            "birth_year": 1940,
            "gender": "female",
            "latitude": 30.27,
            "longitude": 120.15,
            "phone": phone,
            "id_number": ID_NUMBER,
            "address": ADDRESS,
            "health_notes": HEALTH,
            "consents": [{"purpose": "service", "given_by": "guardian", "guardian_name": "Li"}],
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["elder"]["id"], phone


async def every_text_in_database() -> str:
    connection = get_connection("default")
    dump = []
    for table in ("user", "elder_profile", "assessment", "certificate", "access_log"):
        _, rows = await connection.execute_query(f'SELECT * FROM "{table}"')
        dump.extend(str(dict(row)) for row in rows)
    return "\n".join(dump)


class TestAtRest:
    async def test_raw_rows_hold_no_phone_id_address_or_health(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        _, phone = await register_elder(client, city)
        raw = await every_text_in_database()
        for secret in (phone, ID_NUMBER, ADDRESS, HEALTH, "氨氯地平"):
            assert secret not in raw

    async def test_admin_reads_them_back(self, client: httpx.AsyncClient, city: City) -> None:
        elder_id, phone = await register_elder(client, city)
        response = await client.get(
            f"/api/v1/elders/{elder_id}", headers=city["centre_admin"].headers
        )
        sensitive = response.json()["elder"]["sensitive"]
        assert sensitive == {
            "phone": phone,
            "id_number": ID_NUMBER,
            "address": ADDRESS,
            "health_notes": HEALTH,
        }


class TestKeyRotation:
    async def test_every_value_stays_readable(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        elder_id, phone = await register_elder(client, city)
        old_key = runtime.crypto.active_key_id
        report = await rotate_field_key(runtime)
        assert report.new_key_id != old_key
        assert report.reencrypted >= 5
        for model, column, _ in ENCRYPTED_COLUMNS:
            for token in await model.filter(**{f"{column}__isnull": False}).values_list(
                column, flat=True
            ):
                assert not runtime.crypto.needs_rotation(token), f"{model.__name__}.{column}"
        response = await client.get(
            f"/api/v1/elders/{elder_id}", headers=city["centre_admin"].headers
        )
        assert response.json()["elder"]["sensitive"]["id_number"] == ID_NUMBER
        login = await client.post("/api/v1/auth/login", json={"phone": phone, "password": "x"})
        assert login.json()["error"]["code"] == "invalid_credentials"  # found by blind index

    async def test_rotation_twice_is_harmless(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        elder_id, _ = await register_elder(client, city)
        first = await rotate_field_key(runtime)
        second = await rotate_field_key(runtime)
        assert second.reencrypted == first.reencrypted
        response = await client.get(
            f"/api/v1/elders/{elder_id}", headers=city["centre_admin"].headers
        )
        assert response.json()["elder"]["sensitive"]["address"] == ADDRESS


async def test_a_running_server_follows_a_rotation_made_by_another_process(
    client: httpx.AsyncClient,
    city: City,
    runtime: Runtime,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`eldercare keys rotate` runs beside the server: values the server writes afterwards go
    under the new key, so the rotation's sweep leaves nothing under the old one."""
    clock = [time.monotonic()]
    monkeypatch.setattr(keyfiles.time, "monotonic", lambda: clock[0])
    cli_keys = Keyring.open(settings.keys_dir / "fields")  # what the CLI process opens
    new_key = cli_keys.rotate_key()
    clock[0] += keyfiles.WATCH_INTERVAL_SECONDS
    elder_id, _ = await register_elder(client, city)
    profile = await ElderProfile.get(user_id=elder_id)
    user = await User.get(id=elder_id)
    for token in (user.phone_enc, profile.id_number_enc, profile.address_enc, profile.health_enc):
        assert token is not None and token.split(":")[1] == new_key
    assert runtime.crypto.active_key_id == new_key


def test_rotation_covers_every_encrypted_column() -> None:
    """A new `*_enc` column that key rotation does not know would keep the old key alive."""
    from tortoise import Tortoise

    from market.db import tortoise_config

    async def columns() -> set[tuple[str, str]]:
        await Tortoise.init(config=tortoise_config("sqlite://:memory:"))
        try:
            return {
                (model.__name__, name)
                for app in Tortoise.apps.values()
                for model in app.values()
                for name in model._meta.fields_map
                if name.endswith("_enc")
            }
        finally:
            await Tortoise.close_connections()

    import asyncio

    found = asyncio.run(columns())
    covered = {(model.__name__, column) for model, column, _ in ENCRYPTED_COLUMNS}
    assert found == covered
