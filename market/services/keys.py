"""Rotating the field-encryption key: a new active key, then every stored value re-encrypted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from tortoise.models import Model
from tortoise.transactions import in_transaction

from market.models import Assessment, Booking, Certificate, ElderProfile, User
from market.security.keyfiles import WATCH_INTERVAL_SECONDS
from market.services.auth import PHONE_PURPOSE
from market.services.bookings import CODE_PURPOSE
from market.services.elders import ASSESSMENT_PURPOSE, ENCRYPTED
from market.services.helpers import CERTIFICATE_PURPOSE
from market.services.runtime import Runtime
from market.visits.models import CHANGE_PURPOSE as VISIT_CHANGE_PURPOSE
from market.visits.models import RECORD_PURPOSE as VISIT_RECORD_PURPOSE
from market.visits.models import MajorChange, VisitRecord

# (model, column, purpose) for every encrypted column in the database.
ENCRYPTED_COLUMNS: tuple[tuple[type[Model], str, str], ...] = (
    (User, "phone_enc", PHONE_PURPOSE),
    (ElderProfile, "id_number_enc", ENCRYPTED["id_number"]),
    (ElderProfile, "address_enc", ENCRYPTED["address"]),
    (ElderProfile, "health_enc", ENCRYPTED["health_notes"]),
    (Assessment, "detail_enc", ASSESSMENT_PURPOSE),
    (Certificate, "number_enc", CERTIFICATE_PURPOSE),
    (VisitRecord, "record_enc", VISIT_RECORD_PURPOSE),
    (MajorChange, "note_enc", VISIT_CHANGE_PURPOSE),
    (Booking, "confirm_code_enc", CODE_PURPOSE),
)
BATCH = 500
# Servers look for a new active key at most every WATCH_INTERVAL_SECONDS, when they next
# encrypt; two intervals and a second more also cover a request in flight at that moment.
ROTATION_GRACE_SECONDS = 2 * WATCH_INTERVAL_SECONDS + 1


@dataclass(frozen=True)
class RotationReport:
    new_key_id: str
    reencrypted: int


async def reencrypt_all(
    runtime: Runtime, *, progress: Callable[[str, int], None] | None = None
) -> int:
    """Re-encrypt every value not under the active key; safe to rerun after an interruption."""
    total = 0
    for model, column, purpose in ENCRYPTED_COLUMNS:
        last_pk = None
        while True:
            query = model.filter(**{f"{column}__isnull": False}).order_by("id").limit(BATCH)
            if last_pk is not None:
                query = query.filter(id__gt=last_pk)
            rows = await query.values("id", column)
            if not rows:
                break
            async with in_transaction():
                for row in rows:
                    token = row[column]
                    if runtime.crypto.needs_rotation(token):
                        fresh = runtime.crypto.reencrypt(token, purpose=purpose)
                        await model.filter(id=row["id"]).update(**{column: fresh})
                        total += 1
            last_pk = rows[-1]["id"]
            if progress:
                progress(f"{model.__name__}.{column}", total)
    return total


async def rotate_field_key(
    runtime: Runtime,
    *,
    progress: Callable[[str, int], None] | None = None,
    grace_seconds: float = 0.0,
) -> RotationReport:
    """A new active key, then every stored value under it.

    `grace_seconds` (the CLI passes `ROTATION_GRACE_SECONDS`) lets running servers notice the
    new key and finish requests that encrypted under the old one before the sweep starts, so
    the sweep does not pass rows they are about to write.
    """
    new_key = runtime.crypto.rotate_key()
    if grace_seconds > 0:
        await asyncio.sleep(grace_seconds)
    count = await reencrypt_all(runtime, progress=progress)
    return RotationReport(new_key_id=new_key, reencrypted=count)
