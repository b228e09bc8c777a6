"""Registration, login with throttling, logout, and bearer-token authentication."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from starlette.requests import HTTPConnection
from tortoise.transactions import in_transaction

from market.errors import (
    ApiError,
    Conflict,
    Forbidden,
    InvalidInput,
    TooManyRequests,
    Unauthenticated,
)
from market.models import (
    AuthToken,
    District,
    ElderProfile,
    HelperKind,
    HelperProfile,
    Role,
    User,
    UserStatus,
)
from market.schemas.auth import LoginCommand, RegisterCommand
from market.schemas.common import normalise_phone
from market.security import passwords
from market.security.throttle import TooManyAttempts
from market.security.tokens import TokenExpired, TokenInvalid
from market.services.runtime import Runtime, runtime_of
from market.services.scope import Principal, district_subtree

PHONE_PURPOSE = "user.phone"


def now_utc() -> datetime:
    return datetime.now(UTC)


# scrypt is deliberately slow (~50 ms); run it in a thread so one sign-in does not stall
# every other request and websocket of the process.
async def hash_off_loop(password: str) -> str:
    return await asyncio.to_thread(passwords.hash_password, password)


async def verify_off_loop(password: str, encoded: str | None) -> bool:
    if encoded is None:
        return await asyncio.to_thread(passwords.dummy_verify, password)
    return await asyncio.to_thread(passwords.verify_password, password, encoded)


def phone_index(runtime: Runtime, phone: str) -> str:
    return runtime.crypto.blind_index(normalise_phone(phone), purpose=PHONE_PURPOSE)


def _weak_password(exc: passwords.WeakPassword) -> InvalidInput:
    return InvalidInput(
        "password_weak",
        exc.message,
        [{"field": "password", "problem": exc.message}],
    )


async def create_account(
    runtime: Runtime,
    *,
    phone: str,
    password: str | None,
    name: str,
    role: Role,
    district: District,
    status: UserStatus,
    created_by: UUID | None = None,
    gender: str | None = None,
    birth_year: int | None = None,
) -> User:
    """A user row with encrypted phone and hashed password; call inside a transaction."""
    index = phone_index(runtime, phone)
    if await User.filter(phone_index=index).exists():
        raise Conflict("phone_taken", "an account with this phone number already exists")
    if password is not None:
        try:
            passwords.check_password_strength(password, phone=normalise_phone(phone))
        except passwords.WeakPassword as exc:
            raise _weak_password(exc) from None
    hashed = await hash_off_loop(password) if password is not None else None
    return await User.create(
        role=role,
        status=status,
        name=name,
        phone_index=index,
        phone_enc=runtime.crypto.encrypt(normalise_phone(phone), purpose=PHONE_PURPOSE),
        password_hash=hashed,
        district=district,
        created_by_id=created_by,
        gender=gender,
        birth_year=birth_year,
    )


def _missing_for_elder(cmd: RegisterCommand) -> list[dict[str, str]]:
    needed = ("gender", "birth_year", "latitude", "longitude")
    return [
        {"field": name, "problem": "is required for an elder"}
        for name in needed
        if getattr(cmd, name) is None
    ]


def _limit_registrations(runtime: Runtime, cmd: RegisterCommand, client_ip: str) -> None:
    now = now_utc().timestamp()
    index = phone_index(runtime, cmd.phone)
    try:
        runtime.registrations.check(index, client_ip, now=now)
    except TooManyAttempts as exc:
        raise TooManyRequests(
            "registration_throttled",
            f"too many registrations from here; try again in {exc.retry_after_seconds} seconds",
            retry_after=exc.retry_after_seconds,
        ) from None
    runtime.registrations.record_failure(index, client_ip, now=now)


async def register(runtime: Runtime, cmd: RegisterCommand, *, client_ip: str) -> User:
    _limit_registrations(runtime, cmd, client_ip)
    role = Role(cmd.role)
    if role is Role.elder and (missing := _missing_for_elder(cmd)):
        raise InvalidInput(
            "invalid_input", f"{missing[0]['field']} is required for an elder", missing
        )
    district = await District.get_or_none(code=cmd.district_code)
    if district is None:
        raise InvalidInput(
            "unknown_district",
            f"no district with code {cmd.district_code!r}",
            [{"field": "district_code", "problem": "no such district"}],
        )
    if role is Role.volunteer:
        # Imported here: the helper service builds on this module.
        from market.services.helpers import require_depositor_age

        await require_depositor_age(district.id, cmd.birth_year, at=now_utc())
    status = UserStatus.pending if role is Role.volunteer else UserStatus.active
    async with in_transaction():
        user = await create_account(
            runtime,
            phone=cmd.phone,
            password=cmd.password,
            name=cmd.name,
            role=role,
            district=district,
            status=status,
            gender=cmd.gender,
            birth_year=cmd.birth_year,
        )
        if role is Role.elder:
            assert (
                cmd.birth_year
                and cmd.gender
                and cmd.latitude is not None
                and cmd.longitude is not None
            )
            await ElderProfile.create(
                user=user,
                birth_year=cmd.birth_year,
                gender=cmd.gender,
                latitude=cmd.latitude,
                longitude=cmd.longitude,
                consents=[{"purpose": "service", "given_by": "elder", "at": now_utc().isoformat()}],
            )
        elif role is Role.volunteer:
            await HelperProfile.create(
                user=user, kind=HelperKind.volunteer, latitude=cmd.latitude, longitude=cmd.longitude
            )
    return user


@dataclass(frozen=True)
class Session:
    token: str
    expires_at: datetime
    user: User


def _throttled(exc: TooManyAttempts) -> TooManyRequests:
    return TooManyRequests(
        "login_throttled",
        f"too many failed sign-ins; try again in {exc.retry_after_seconds} seconds",
        retry_after=exc.retry_after_seconds,
    )


async def login(runtime: Runtime, cmd: LoginCommand, *, client_ip: str) -> Session:
    now = now_utc()
    index = phone_index(runtime, cmd.phone)
    try:
        runtime.throttle.check(index, client_ip, now=now.timestamp())
    except TooManyAttempts as exc:
        raise _throttled(exc) from None
    user = await User.get_or_none(phone_index=index)
    ok = await verify_off_loop(cmd.password, user.password_hash if user else None)
    if not ok or user is None:
        runtime.throttle.record_failure(index, client_ip, now=now.timestamp())
        raise Unauthenticated("invalid_credentials", "phone number or password is wrong")
    runtime.throttle.record_success(index, client_ip, now=now.timestamp())
    if user.status is UserStatus.suspended:
        raise Forbidden("account_suspended", "this account is suspended; contact your centre")
    if passwords.needs_rehash(user.password_hash or ""):
        user.password_hash = await hash_off_loop(cmd.password)
        await user.save(update_fields=["password_hash"])
    ttl = timedelta(seconds=runtime.settings.token_ttl_seconds)
    token, claims = runtime.tokens.issue(user.id, user.role.value, now=now, ttl=ttl)
    await AuthToken.create(
        jti=claims.jti, user=user, issued_at=claims.issued_at, expires_at=claims.expires_at
    )
    return Session(token=token, expires_at=claims.expires_at, user=user)


async def logout(principal: Principal) -> None:
    await AuthToken.filter(jti=principal.token_id, revoked_at=None).update(revoked_at=now_utc())


def _bearer(connection: HTTPConnection) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("token_missing", "send Authorization: Bearer <token>; sign in first")
    return token.strip()


async def principal_for_token(runtime: Runtime, token: str) -> Principal:
    try:
        claims = runtime.tokens.verify(token, now=now_utc())
    except TokenExpired:
        raise Unauthenticated("token_expired", "your session has expired; sign in again") from None
    except TokenInvalid:
        raise Unauthenticated("token_invalid", "the token is not valid; sign in again") from None
    record = await AuthToken.get_or_none(jti=claims.jti).select_related("user")
    if record is None or record.revoked_at is not None:
        raise Unauthenticated("token_revoked", "this session was signed out; sign in again")
    user: User = record.user
    if user.status is UserStatus.suspended:
        raise Unauthenticated("account_suspended", "this account is suspended")
    districts = (
        await district_subtree(user.district_id)  # type: ignore[attr-defined]
        if user.role is Role.centre_admin
        else frozenset()
    )
    return Principal(
        user_id=user.id,
        role=user.role,
        district_id=user.district_id,  # type: ignore[attr-defined]
        token_id=claims.jti,
        districts=districts,
    )


async def authenticate(connection: HTTPConnection) -> Principal:
    """The caller of this request, authenticated once and cached on the request."""
    cached = getattr(connection.state, "principal", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    principal = await principal_for_token(runtime_of(connection), _bearer(connection))
    connection.state.principal = principal
    return principal


def current(connection: HTTPConnection) -> Principal:
    """The principal that `@endpoint` authenticated for this request."""
    principal = getattr(connection.state, "principal", None)
    if principal is None:
        raise ApiError("internal", "endpoint has no principal")
    return principal  # type: ignore[no-any-return]
