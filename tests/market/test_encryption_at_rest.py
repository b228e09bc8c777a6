"""Sensitive data never reaches the database in clear, and survives key rotation.

`sensitive_world` writes one value of every encrypted kind through the API (an elder's phone,
ID number, address and health notes, an assessment, a certificate number, a visit record, a
major-change note, a booking's confirmation code); the scans then look for the plaintext in
every table's rows and, on SQLite, in the raw bytes of the database file and its WAL.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tortoise import Tortoise
from tortoise.connection import get_connection

from market.models import ElderProfile, User
from market.security import keyfiles
from market.security.fieldcrypto import Keyring
from market.services.keys import ENCRYPTED_COLUMNS, rotate_field_key
from market.services.runtime import Runtime
from market.settings import Settings
from tests.conftest import ON_POSTGRES
from tests.market.bookings.world import book
from tests.market.conftest import City, next_phone
from tests.market.test_elders import assessment_body
from tests.market.test_helpers import NUMBER as CERTIFICATE
from tests.market.test_helpers import add_certificate
from tests.market.visits.conftest import FINANCES, iso, now, visit_body
from tests.market.visits.conftest import HEALTH as VISIT_HEALTH

# Kept in clear (names are not encrypted): the scans must find it, or they read nothing.
NAME = "张秀兰"
PASSWORD = "elder pass 2026"
ID_NUMBER = "330106194001011234"
ADDRESS = "杭州市西湖区文三路 18 号 3 单元 502"
HEALTH = "高血压，服用氨氯地平"
CHANGE_NOTE = "丈夫去世，夜间失眠"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No matching loop: a round writing a booking it read before a rotation would race it."""
    return settings.with_overrides(matching_enabled=False)


@dataclass
class SensitiveWorld:
    """What `sensitive_world` wrote, by the API, as its writer knows it in clear."""

    elder_id: str
    phone: str
    assessment_reasons: list[str]
    certificate_id: str
    booking_id: str
    confirm_code: str

    def secrets(self) -> list[str]:
        """Values that must never be found in clear. The confirmation code is left out: six
        digits also occur by chance in timestamps and index bytes (it is checked by decryption
        in the rotation test)."""
        return [
            self.phone,
            ID_NUMBER,
            ADDRESS,
            HEALTH,
            "氨氯地平",
            CERTIFICATE,
            VISIT_HEALTH,
            FINANCES,
            CHANGE_NOTE,
            *self.assessment_reasons,
        ]


def created(response: httpx.Response, key: str) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return response.json()[key]  # type: ignore[no-any-return]


async def register_elder(client: httpx.AsyncClient, city: City) -> tuple[str, str]:
    phone = next_phone()
    response = await client.post(
        "/api/v1/elders",
        headers=city["centre_admin"].headers,
        json={
            "name": NAME,
            "district_id": str(city.east_community.id),
            "birth_year": 1940,
            "gender": "female",
            "latitude": 30.27,
            "longitude": 120.15,
            "phone": phone,
            "password": PASSWORD,
            "id_number": ID_NUMBER,
            "address": ADDRESS,
            "health_notes": HEALTH,
            "consents": [{"purpose": "service", "given_by": "guardian", "guardian_name": "Li"}],
        },
    )
    return created(response, "elder")["id"], phone


async def sensitive_world(client: httpx.AsyncClient, city: City) -> SensitiveWorld:
    admin = city["centre_admin"].headers
    elder_id, phone = await register_elder(client, city)
    assessment = created(
        await client.post(
            f"/api/v1/elders/{elder_id}/assessments", json=assessment_body(), headers=admin
        ),
        "assessment",
    )
    certificate_id = await add_certificate(client, city)
    created(
        await client.post(f"/api/v1/elders/{elder_id}/visits", json=visit_body(), headers=admin),
        "visit",
    )
    change = {"kind": "bereavement", "at": iso(now()), "note": CHANGE_NOTE}
    response = await client.post(
        f"/api/v1/elders/{elder_id}/major-changes", json=change, headers=admin
    )
    assert response.status_code == 201, response.text
    booking = await book(client, city["elder"])
    return SensitiveWorld(
        elder_id=elder_id,
        phone=phone,
        assessment_reasons=assessment["reasons"],
        certificate_id=certificate_id,
        booking_id=booking["id"],
        confirm_code=booking["confirm_code"],
    )


def spellings(secret: str) -> list[bytes]:
    """The bytes a value would have if stored in clear: UTF-8, or JSON-escaped ASCII."""
    forms = {secret.encode("utf-8"), json.dumps(secret)[1:-1].encode("ascii")}
    return sorted(forms)


def found_in(secrets: list[str], raw: bytes) -> list[str]:
    return [s for s in secrets if any(form in raw for form in spellings(s))]


async def every_table() -> list[str]:
    """Every table in the database, from its own catalogue (not only the ones models name)."""
    connection = get_connection("default")
    if connection.capabilities.dialect == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    else:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    _, rows = await connection.execute_query(query)
    return [row[0] for row in rows]


def as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


async def every_row_as_bytes() -> bytes:
    connection = get_connection("default")
    dump = bytearray()
    for table in await every_table():
        for row in await connection.execute_query_dict(f'SELECT * FROM "{table}"'):
            for value in row.values():
                dump += as_bytes(value) + b"\n"
    return bytes(dump)


def database_files(settings: Settings) -> list[Path]:
    """The SQLite database file and whichever of its WAL, shared-memory and rollback journal
    files exist."""
    main = Path(settings.database_url.removeprefix("sqlite://"))
    companions = [main.with_name(main.name + suffix) for suffix in ("-wal", "-shm", "-journal")]
    return [main, *(path for path in companions if path.exists())]


def files_as_bytes(settings: Settings) -> bytes:
    return b"".join(path.read_bytes() for path in database_files(settings))


class TestAtRest:
    async def test_every_table_is_scanned(self, client: httpx.AsyncClient, city: City) -> None:
        tables = set(await every_table())
        for app in Tortoise.apps.values():
            for model in app.values():
                assert model._meta.db_table in tables

    async def test_no_row_of_any_table_holds_a_secret(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        world = await sensitive_world(client, city)
        raw = await every_row_as_bytes()
        assert found_in([NAME], raw) == [NAME]  # the scan reads what is stored in clear
        assert found_in(world.secrets(), raw) == []

    @pytest.mark.skipif(ON_POSTGRES, reason="reads the SQLite database file")
    async def test_database_file_and_wal_hold_no_secret(
        self, client: httpx.AsyncClient, city: City, settings: Settings
    ) -> None:
        world = await sensitive_world(client, city)
        connection = get_connection("default")
        # As written: recent pages are still in the WAL.
        before = files_as_bytes(settings)
        assert found_in([NAME], before) == [NAME]
        assert found_in(world.secrets(), before) == []
        # Checkpointed: every page copied into the main file, the WAL emptied.
        await connection.execute_query("PRAGMA wal_checkpoint(TRUNCATE)")
        after = files_as_bytes(settings)
        assert found_in([NAME], after) == [NAME]
        assert found_in(world.secrets(), after) == []

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


async def decrypt_every_column(runtime: Runtime) -> dict[str, dict[str, str]]:
    """Per `Model.column`: every stored value decrypted with its purpose, by row id."""
    plain: dict[str, dict[str, str]] = {}
    for model, column, purpose in ENCRYPTED_COLUMNS:
        rows = await model.filter(**{f"{column}__isnull": False}).values_list("id", column)
        plain[f"{model.__name__}.{column}"] = {
            str(row_id): runtime.crypto.decrypt(token, purpose=purpose) for row_id, token in rows
        }
    return plain


class TestKeyRotation:
    async def test_every_encrypted_column_decrypts_to_what_was_written(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        world = await sensitive_world(client, city)
        before = await decrypt_every_column(runtime)
        # Every encrypted column holds something, or the comparison below would prove nothing.
        assert [column for column, values in before.items() if not values] == []
        old_key = runtime.crypto.active_key_id
        report = await rotate_field_key(runtime)
        assert report.new_key_id != old_key
        assert report.reencrypted == sum(len(values) for values in before.values())
        for model, column, _ in ENCRYPTED_COLUMNS:
            for token in await model.filter(**{f"{column}__isnull": False}).values_list(
                column, flat=True
            ):
                assert not runtime.crypto.needs_rotation(token), f"{model.__name__}.{column}"
        after = await decrypt_every_column(runtime)
        assert after == before
        assert world.phone in after["User.phone_enc"].values()
        # Only the elder registered here has an ID number, address and health notes.
        assert list(after["ElderProfile.id_number_enc"].values()) == [ID_NUMBER]
        assert list(after["ElderProfile.address_enc"].values()) == [ADDRESS]
        assert list(after["ElderProfile.health_enc"].values()) == [HEALTH]
        assert list(after["Certificate.number_enc"].values()) == [CERTIFICATE]
        assert after["Booking.confirm_code_enc"][world.booking_id] == world.confirm_code
        [record] = after["VisitRecord.record_enc"].values()
        assert json.loads(record)["health"] == VISIT_HEALTH
        assert list(after["MajorChange.note_enc"].values()) == [CHANGE_NOTE]
        [detail] = after["Assessment.detail_enc"].values()
        assert json.loads(detail)["reasons"] == world.assessment_reasons

    async def test_the_api_reads_every_kind_after_rotation(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        world = await sensitive_world(client, city)
        await rotate_field_key(runtime)
        admin = city["centre_admin"].headers
        elder = (await client.get(f"/api/v1/elders/{world.elder_id}", headers=admin)).json()
        assert elder["elder"]["sensitive"]["health_notes"] == HEALTH
        assessments = await client.get(
            f"/api/v1/elders/{world.elder_id}/assessments", headers=admin
        )
        assert assessments.json()["assessments"][0]["reasons"] == world.assessment_reasons
        certificate = await client.get(
            f"/api/v1/certificates/{world.certificate_id}", headers=admin
        )
        assert certificate.json()["certificate"]["number"] == CERTIFICATE
        visits = await client.get(f"/api/v1/elders/{world.elder_id}/visits", headers=admin)
        assert [v["record"]["health"] for v in visits.json()["visits"]] == [VISIT_HEALTH]
        booking = await client.get(
            f"/api/v1/bookings/{world.booking_id}", headers=city["elder"].headers
        )
        assert booking.json()["booking"]["confirm_code"] == world.confirm_code

    async def test_sign_in_by_phone_still_finds_the_account(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        """The phone's blind index is keyed apart from the encryption keys: a rotation must not
        lose the way from a typed phone number to its account."""
        elder_id, phone = await register_elder(client, city)
        await rotate_field_key(runtime)
        response = await client.post(
            "/api/v1/auth/login", json={"phone": phone, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        me = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {response.json()['token']}"}
        )
        assert me.json()["user"]["id"] == elder_id

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
