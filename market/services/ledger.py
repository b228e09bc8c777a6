"""The ledger inside the service: one store, the district keys, chain names and append helpers.

Chains are named by the code of a top-level district (level `district`). Streets and
communities have no chain of their own: an account lives in the chain of its user's top-level
district, so a volunteer of a community earns and spends in that district's chain, and moving
between two top-level districts is always the two-phase transfer of `ledger.transfer`.

Keys live outside the database, under `<keys_dir>/ledger/`:

    <code>/keys.json, <code>/<key id>.key   district signing keys (ledger.keys.KeyStore)
    witnesses/<code>/...                    the witness key of each district's centre
    passphrase                              only when ELDERCARE_LEDGER_KEY_PASSPHRASE is empty:
                                            a random passphrase made on first start (0600), so
                                            the embedded demo runs with no setup
    peers.json                              other deployments' districts (federation.py)

Append helpers take a caller-chosen `entry_id` and are idempotent by it: call them again after
a crash or a timeout and the first result comes back, nothing is written twice. They open their
own ledger transaction, so call them after (not inside) your own `in_transaction()` block; a
derived id (e.g. `deposit:<booking id>`) makes "commit booking, then append" safe to retry.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import stat
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from ledger import errors as lerr
from ledger.entries import (
    ISSUANCE,
    POOL,
    USER_PREFIX,
    Entry,
    Kind,
    check_district,
    clearing_account,
    user_account,
)
from ledger.keys import KeyStore, Signer
from ledger.rules import Limits, Proposal
from ledger.service import DEFAULT_LIMITS, append
from ledger.service import refuse as refuse_id
from ledger.storage.tortoise_store import TortoiseStore
from ledger.transfer import (
    META_PAYEE,
    CreditAnswer,
    CreditRequest,
    ServingSide,
    TransferOutcome,
    TransferRequest,
    hold_id,
    run_transfer,
    serve_abort,
    serve_credit,
    settle_hold,
)
from market import policy as policy_rules
from market.errors import ApiError, Conflict, NotFound
from market.models import District, User
from market.services.ledger_errors import api_error, ledger_errors, policy_refusal
from market.settings import Settings

LEDGER_DIR = "ledger"
WITNESS_DIR = "witnesses"
PASSPHRASE_FILE = "passphrase"
DEFAULT_TRANSFER_DEADLINE_MS = 24 * 3600 * 1000
log = logging.getLogger("eldercare.ledger")
CAP_RULE = "time_bank.account_cap_minutes"
# The rule name `ledger.rules.check` gives a refusal by the `Limits.max_balance` hook.
MAX_BALANCE_RULE = "max_balance"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ledger_dir(settings: Settings) -> Path:
    return settings.keys_dir / LEDGER_DIR


def ledger_passphrase(settings: Settings) -> str:
    """The configured passphrase, or one generated once beside the key files."""
    if settings.ledger_key_passphrase:
        return settings.ledger_key_passphrase
    directory = ledger_dir(settings)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / PASSPHRASE_FILE
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process made it first; key files readable by others are refused elsewhere,
        # and so is this one.
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise lerr.KeyStoreError(f"{path} is readable by other users; chmod 600 it") from None
        return path.read_text("utf-8").strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text("utf-8").strip()


# ---- chains ----------------------------------------------------------------------------------


async def top_level(district_id: UUID) -> District:
    district = await District.get(id=district_id)
    while district.parent_id is not None:  # type: ignore[attr-defined]
        district = await District.get(id=district.parent_id)  # type: ignore[attr-defined]
    return district


def chain_name(code: str) -> str:
    try:
        return check_district(code)
    except lerr.InvalidEntry:
        raise Conflict(
            "ledger.bad_district_code", f"district code {code!r} cannot name a ledger chain"
        ) from None


@dataclass(frozen=True)
class CappedLocalServing:
    """The serving side of a local chain: credits a payee as `LocalServing` does, under the
    serving district's per-account cap checked by the ledger under the chain lock (a credit
    past it is refused, so the home district voids its hold)."""

    gateway: LedgerGateway

    async def credit(self, request: CreditRequest) -> CreditAnswer:
        gateway = self.gateway
        district = await gateway.district_of_chain(request.serving)
        _, policy = await gateway.policy(district.id, gateway.clock())
        limits = capped(gateway.limits, policy.time_bank.account_cap_minutes)
        return await serve_credit(gateway.store, request, now_ms=gateway.clock(), limits=limits)

    async def abort(self, request: CreditRequest) -> CreditAnswer:
        return await serve_abort(self.gateway.store, request, now_ms=self.gateway.clock())


def capped(limits: Limits, cap: int) -> Limits:
    """`limits` with the policy's per-account cap on user accounts (not the pool), checked by
    the ledger under the chain lock so concurrent appends cannot all slip under it."""

    def max_balance(district: str, account: str) -> int | None:
        return cap if account.startswith(USER_PREFIX) else None

    return replace(limits, max_balance=max_balance)


def _signer(store: KeyStore, chain: str) -> Signer:
    try:
        return store.signer(chain)
    except lerr.KeyNotFound:
        with suppress(lerr.KeyExists):  # another process may create it at the same moment
            store.create(chain)
        return store.signer(chain)


@dataclass(frozen=True)
class Holder:
    """A user's ledger account: the chain it lives in and the policy in force for them."""

    user: User
    chain: str
    account: str
    district_id: UUID

    @property
    def user_id(self) -> UUID:
        return self.user.id


@dataclass
class LedgerGateway:
    """Process-wide ledger resources; lives on the `Runtime` as `runtime.ledger`."""

    settings: Settings
    keys: KeyStore
    witness_keys: KeyStore
    clock: Callable[[], int] = now_ms
    limits: Limits = DEFAULT_LIMITS
    # Remote districts reachable over HTTP; set by market.services.ledger_federation.
    remote: Callable[[str], ServingSide | None] = field(default=lambda district: None)
    federation: Any = None  # market.services.ledger_federation.Federation, once installed
    _store: TortoiseStore | None = None
    _chains: dict[UUID, str] = field(default_factory=dict)
    background: asyncio.Task[None] | None = None
    on_close: list[Callable[[], Any]] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings) -> LedgerGateway:
        passphrase = ledger_passphrase(settings)
        base = ledger_dir(settings)
        return cls(
            settings=settings,
            keys=KeyStore(base, passphrase),
            witness_keys=KeyStore(base / WITNESS_DIR, passphrase),
        )

    @property
    def store(self) -> TortoiseStore:
        # Resolved on first use: the Tortoise connection exists only inside the lifespan.
        if self._store is None:
            from tortoise.connection import get_connection

            from market.services.ledger_events import EventedStore

            # Every entry appended through this store is also its users' realtime events, in
            # the same transaction (ledger_events.py).
            self._store = EventedStore(get_connection("default"))
        return self._store

    async def close(self) -> None:
        if self in _OPEN:
            _OPEN.remove(self)
        if self.background is not None:
            self.background.cancel()
            await asyncio.gather(self.background, return_exceptions=True)
            self.background = None
        for closer in self.on_close:
            result = closer()
            if asyncio.iscoroutine(result):
                await result

    # -- names, keys, policy ---------------------------------------------------------------

    async def chain_of_district(self, district_id: UUID) -> str:
        cached = self._chains.get(district_id)
        if cached is None:
            cached = chain_name((await top_level(district_id)).code)
            self._chains[district_id] = cached
        return cached

    async def local_chains(self) -> list[str]:
        codes = (
            await District.filter(parent_id=None).order_by("code").values_list("code", flat=True)
        )
        chains = []
        for code in codes:
            try:
                chains.append(check_district(str(code)))
            except lerr.InvalidEntry:
                # Codes are validated at creation, but old rows or a direct insert may hold one
                # that names no chain: skip it rather than fail every district's endpoints.
                log.warning("district code %r cannot name a ledger chain; skipped", code)
        return chains

    async def district_of_chain(self, chain: str) -> District:
        district = await District.get_or_none(code=chain, parent_id=None)
        if district is None:
            raise NotFound("ledger.unknown_district", f"no ledger chain {chain!r} here")
        return district

    async def holder(self, user_id: UUID) -> Holder:
        user = await User.get_or_none(id=user_id)
        if user is None:
            raise NotFound("user_not_found", f"no user {user_id}")
        district_id: UUID = user.district_id  # type: ignore[attr-defined]
        chain = await self.chain_of_district(district_id)
        return Holder(user, chain, user_account(str(user.id)), district_id)

    def signer(self, chain: str) -> Signer:
        """The chain's active signing key, created on first use."""
        return _signer(self.keys, chain)

    def witness_signer(self, chain: str) -> Signer:
        """The witness key of the centre of top-level district `chain`."""
        return _signer(self.witness_keys, chain)

    async def policy(
        self, district_id: UUID, at_ms: int
    ) -> tuple[int, policy_rules.DistrictPolicy]:
        from market.services.districts import policy_in_force

        return await policy_in_force(district_id, datetime.fromtimestamp(at_ms / 1000, UTC))

    # -- appends -----------------------------------------------------------------------------

    async def append(self, proposal: Proposal, *, cap: int | None = None) -> Entry:
        """Append `proposal`; with `cap`, no user account it credits may end above `cap`."""
        limits = self.limits if cap is None else capped(self.limits, cap)
        try:
            return await append(self.store, proposal, limits=limits)
        except lerr.PolicyForbids as error:
            if cap is not None and error.rule == MAX_BALANCE_RULE:
                reason = f"{error.reason}; minutes above the cap can only be donated"
                forbids = policy_rules.PolicyForbids(CAP_RULE, error.version, reason)
                raise policy_refusal(forbids) from error
            raise api_error(error) from error
        except lerr.LedgerError as error:
            raise api_error(error) from error

    async def refuse(self, proposal: Proposal, error: ApiError) -> None:
        """Record `proposal.id` as refused by a check made before the ledger was asked, so a
        retry of the same id is refused too (`ledger.idempotency_failed`) instead of
        succeeding later by surprise."""
        async with ledger_errors():
            await refuse_id(self.store, proposal, code=error.code, message=error.message)

    async def _proposal(
        self, holder: Holder, *, at_ms: int | None, **fields: Any
    ) -> tuple[Proposal, policy_rules.DistrictPolicy]:
        at = self.clock() if at_ms is None else at_ms
        version, policy = await self.policy(holder.district_id, at)
        return Proposal(district=holder.chain, policy=version, at_ms=at, **fields), policy

    async def deposit(
        self,
        *,
        volunteer_id: UUID,
        minutes: int,
        entry_id: str,
        actor: str,
        category: str | None = None,
        ref: str | None = None,
        payer_id: UUID | None = None,
        from_pool: bool = False,
        at_ms: int | None = None,
    ) -> Entry:
        """Credit a volunteer: from `issuance` (publicly funded service, the default), from the
        district `pool` (`from_pool=True`) or from a payer of the same chain (`payer_id`)."""
        volunteer = await self.holder(volunteer_id)
        debit = POOL if from_pool else ISSUANCE
        if payer_id is not None:
            debit = (await self._same_chain(payer_id, volunteer.chain, "payer")).account
        proposal, policy = await self._proposal(
            volunteer,
            at_ms=at_ms,
            id=entry_id,
            kind=Kind.DEPOSIT,
            debit=debit,
            credit=volunteer.account,
            minutes=minutes,
            actor=actor,
            category=category,
            ref=ref,
        )
        # A deposit past the cap is refused (policy.forbids, the cap rule), not credited.
        return await self.append(proposal, cap=policy.time_bank.account_cap_minutes)

    async def redeem(
        self,
        *,
        payer_id: UUID,
        minutes: int,
        entry_id: str,
        actor: str,
        category: str | None = None,
        ref: str | None = None,
        payee_id: UUID | None = None,
        at_ms: int | None = None,
    ) -> Entry:
        """Pay for a service with hours: to `issuance` (the default) or to a payee of the same
        chain. A payee in another top-level district needs `transfer`."""
        payer = await self.holder(payer_id)
        credit = ISSUANCE
        if payee_id is not None:
            credit = (await self._same_chain(payee_id, payer.chain, "payee")).account
        proposal, _ = await self._proposal(
            payer,
            at_ms=at_ms,
            id=entry_id,
            kind=Kind.REDEEM,
            debit=payer.account,
            credit=credit,
            minutes=minutes,
            actor=actor,
            category=category,
            ref=ref,
        )
        return await self.append(proposal)

    async def gift(
        self,
        *,
        giver_id: UUID,
        recipient_id: UUID,
        minutes: int,
        entry_id: str,
        actor: str,
        at_ms: int | None = None,
    ) -> Entry:
        """Move hours between two users of one chain. The recipient's cap (the giver's policy,
        as in `ledger_actions`) is checked by the ledger; the other rules by `ledger_actions`."""
        giver = await self.holder(giver_id)
        await self._same_chain(recipient_id, giver.chain, "recipient")
        proposal, policy = await self.gift_proposal(
            giver,
            recipient_id=recipient_id,
            minutes=minutes,
            entry_id=entry_id,
            actor=actor,
            at_ms=at_ms,
        )
        return await self.append(proposal, cap=policy.time_bank.account_cap_minutes)

    async def gift_proposal(
        self,
        giver: Holder,
        *,
        recipient_id: UUID,
        minutes: int,
        entry_id: str,
        actor: str,
        at_ms: int | None = None,
    ) -> tuple[Proposal, policy_rules.DistrictPolicy]:
        """The gift as `gift` appends it (also what a refusal of it records)."""
        return await self._proposal(
            giver,
            at_ms=at_ms,
            id=entry_id,
            kind=Kind.GIFT,
            debit=giver.account,
            credit=user_account(str(recipient_id)),
            minutes=minutes,
            actor=actor,
        )

    async def donate(
        self, *, donor_id: UUID, minutes: int, entry_id: str, actor: str, at_ms: int | None = None
    ) -> Entry:
        donor = await self.holder(donor_id)
        proposal, _ = await self.donate_proposal(
            donor, minutes=minutes, entry_id=entry_id, actor=actor, at_ms=at_ms
        )
        return await self.append(proposal)

    async def donate_proposal(
        self, donor: Holder, *, minutes: int, entry_id: str, actor: str, at_ms: int | None = None
    ) -> tuple[Proposal, policy_rules.DistrictPolicy]:
        return await self._proposal(
            donor,
            at_ms=at_ms,
            id=entry_id,
            kind=Kind.DONATE,
            debit=donor.account,
            credit=POOL,
            minutes=minutes,
            actor=actor,
        )

    async def reverse(
        self, *, chain: str, original_id: str, entry_id: str, actor: str, at_ms: int | None = None
    ) -> Entry:
        """A compensating entry for `original_id` (a deposit, redeem, gift or donation)."""
        original = await self.store.entry(chain, original_id)
        if original is None:
            raise NotFound("ledger.unknown_entry", f"no entry {original_id!r} in {chain}")
        district = await self.district_of_chain(chain)
        at = self.clock() if at_ms is None else at_ms
        version, _ = await self.policy(district.id, at)
        return await self.append(
            Proposal(
                district=chain,
                id=entry_id,
                kind=Kind.REVERSE,
                debit=original.credit,
                credit=original.debit,
                minutes=original.minutes,
                actor=actor,
                policy=version,
                at_ms=at,
                category=original.category,
                ref=original.id,
            )
        )

    async def transfer(
        self,
        *,
        payer_id: UUID,
        payee_id: UUID,
        minutes: int,
        transfer_id: str,
        actor: str,
        category: str | None = None,
        ref: str | None = None,
        deadline_ms: int | None = None,
        at_ms: int | None = None,
    ) -> TransferOutcome:
        """Cross-district redemption (通存通兑) from the payer's chain to a payee of another
        local chain: hold, credit, post (or void). Safe to call again with the same id."""
        payer = await self.holder(payer_id)
        payee = await self.holder(payee_id)
        if payee.chain == payer.chain:
            raise Conflict(
                "ledger.same_district",
                "payer and payee share a district chain; use redeem with payee_id",
            )
        return await self.transfer_to(
            payer_id=payer_id,
            serving=payee.chain,
            payee_account=payee.account,
            minutes=minutes,
            transfer_id=transfer_id,
            actor=actor,
            category=category,
            ref=ref,
            deadline_ms=deadline_ms,
            at_ms=at_ms,
        )

    async def transfer_to(
        self,
        *,
        payer_id: UUID,
        serving: str,
        payee_account: str,
        minutes: int,
        transfer_id: str,
        actor: str,
        category: str | None = None,
        ref: str | None = None,
        deadline_ms: int | None = None,
        at_ms: int | None = None,
    ) -> TransferOutcome:
        """The same, to a payee account of any chain this deployment can reach (local or peer)."""
        payer = await self.holder(payer_id)
        at = self.clock() if at_ms is None else at_ms
        version, _ = await self.policy(payer.district_id, at)
        request = TransferRequest(
            transfer_id=transfer_id,
            home=payer.chain,
            serving=serving,
            payer=payer.account,
            payee=payee_account,
            minutes=minutes,
            actor=actor,
            policy=version,
            deadline_ms=deadline_ms
            if deadline_ms is not None
            else at + DEFAULT_TRANSFER_DEADLINE_MS,
            category=category,
            ref=ref,
        )
        local = set(await self.local_chains())
        if serving not in local and self.remote(serving) is None:
            raise NotFound("ledger.unknown_district", f"district {serving!r} is not reachable")
        network = self.network(local)
        async with ledger_errors():
            hold = await self.store.entry(payer.chain, hold_id(transfer_id))
            if hold is not None:
                # A retry resumes the transfer as first placed (its deadline included).
                placed = (hold.debit, hold.credit, hold.minutes, hold.meta.get(META_PAYEE))
                asked = (payer.account, clearing_account(serving), minutes, payee_account)
                if placed != asked:
                    raise lerr.IdempotencyConflict("transfer", hold.id)
                return await settle_hold(self.store, hold, network=network, now_ms=self.clock())
            return await run_transfer(
                self.store, request, network=network, now_ms=at, limits=self.limits
            )

    def network(self, local: set[str]) -> Callable[[str], ServingSide]:
        """Local chains answer in-process; others through the configured federation peers."""
        serving_here = CappedLocalServing(self)

        def side(district: str) -> ServingSide:
            if district in local:
                return serving_here
            remote = self.remote(district)
            if remote is None:
                raise lerr.TransferConflict(district, f"district {district} is not reachable")
            return remote

        return side

    async def _same_chain(self, user_id: UUID, chain: str, role: str) -> Holder:
        other = await self.holder(user_id)
        if other.chain != chain:
            raise Conflict(
                "ledger.other_district",
                f"the {role} keeps hours in district {other.chain}, not {chain}; "
                "between districts hours move by transfer",
            )
        return other


# The gateways this process opened and has not closed, latest last. Settlement is reached from
# deep inside services that hold no request (the matching loop's sweep, auto-confirmation), as
# the realtime doorbells are; like them, the process's gateway is found here.
_OPEN: list[LedgerGateway] = []


def open_ledger(settings: Settings) -> LedgerGateway:
    """The gateway with its federation peers (market.services.ledger_federation)."""
    from market.services.ledger_federation import install

    gateway = LedgerGateway.open(settings)
    install(gateway, settings)
    _OPEN.append(gateway)
    return gateway


def process_gateway() -> LedgerGateway:
    """The ledger gateway of this process (opened by the app's lifespan or a command)."""
    if not _OPEN:
        raise RuntimeError("no ledger gateway is open in this process")
    return _OPEN[-1]
