"""What account holders do with their hours themselves: gift them to a relative, donate them.

Policy (the `time_bank` section in force for the giver's district):
- a gift goes only to a relative linked to the giver by an *approved* family link, whose
  relation *to the giver* is in `gift_recipients` (a family member who is the elder's child
  gives to a parent; the elder gives to a child);
- the part of a balance above `account_cap_minutes` can only be donated to the district pool,
  and a gift may not lift the recipient above the cap;
- minutes held by the giver's live hours bookings (services/payments.py) are not theirs to give:
  the checks and the append run holding the giver's row lock, as booking requests do.
Refusals name the rule and the policy version (`policy.forbids`, 403). Every check runs before
any entry is written; the ledger's own rules (no overdraft, idempotency, and the recipient's
cap, checked again under the chain lock so concurrent gifts cannot all slip under it) still
decide last. A refusal by these checks is recorded against the request's entry id
(`LedgerGateway.refuse`), as the ledger records its own: a failed id stays failed, and a retry
with the same `request_id` is refused (`ledger.idempotency_failed`) even if it would now pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from ledger.entries import Entry
from market import policy as policy_rules
from market.errors import ApiError, Conflict, Forbidden, InvalidInput
from market.models import FamilyLink, LinkStatus
from market.schemas.ledger import DonateHours, GiftHours
from market.services import payments
from market.services.booking_tx import booking_transaction
from market.services.ledger import CAP_RULE, Holder, LedgerGateway
from market.services.ledger_errors import policy_refusal
from market.services.ledger_events import publishing_into
from market.services.ledger_reads import entry_json
from market.services.scope import Principal

GIFT_RULE = "time_bank.gift_recipients"
# Refusals of a first attempt that are recorded against its id (an unknown recipient, a 404,
# is not: nothing about the gift was decided).
RECORDED = (Conflict, Forbidden, InvalidInput)


async def relation_of(recipient: UUID, giver: UUID) -> policy_rules.RelationKind | None:
    """What `recipient` is to `giver` through an approved family link, if anything."""
    # A link says what the family member is to the elder.
    link = await FamilyLink.get_or_none(
        family_id=giver, elder_id=recipient, status=LinkStatus.approved
    )
    if link is not None:
        kind = policy_rules.RelationKind.parse(link.relation)
        return kind.inverse if kind else None
    link = await FamilyLink.get_or_none(
        family_id=recipient, elder_id=giver, status=LinkStatus.approved
    )
    if link is not None:
        return policy_rules.RelationKind.parse(link.relation)
    return None


async def _result(gateway: LedgerGateway, holder: Holder, entry: Any) -> dict[str, Any]:
    return {
        "entry": entry_json(entry),
        "balance_minutes": await gateway.store.balance(holder.chain, holder.account),
    }


async def _check_spendable(
    gateway: LedgerGateway, giver: Holder, minutes: int, *, cap: int | None, version: int
) -> None:
    have = await gateway.store.balance(giver.chain, giver.account)
    held = await payments.held_by_payer(giver.user_id)
    if minutes > have - held:
        why = f", {held} of them held by your hours bookings" if held else ""
        raise Conflict(
            "ledger.insufficient_minutes",
            f"your account has {have} minutes{why}; {minutes} requested",
            {"balance_minutes": have, "held_minutes": held},
        )
    if cap is not None and minutes > min(have, cap):
        raise policy_refusal(
            policy_rules.PolicyForbids(
                CAP_RULE,
                version,
                f"only {min(have, cap)} of your {have} minutes are within the cap of {cap}; "
                "minutes above the cap can only be donated",
            )
        )


async def _first_attempt(gateway: LedgerGateway, holder: Holder, entry_id: str) -> bool:
    """Whether `entry_id` was neither appended nor refused yet: only then do the checks run.
    A retry after success returns the entry; after a refusal the ledger refuses it again."""
    store = gateway.store
    if await store.entry(holder.chain, entry_id) is not None:
        return False
    return await store.failure(holder.chain, entry_id) is None


async def _check_gift(
    gateway: LedgerGateway, principal: Principal, giver: Holder, cmd: GiftHours
) -> None:
    if cmd.recipient_id == principal.user_id:
        raise InvalidInput(
            "invalid_input",
            "recipient_id is yourself",
            [{"field": "recipient_id", "problem": "must be someone else"}],
        )
    recipient = await gateway.holder(cmd.recipient_id)
    version, policy = await gateway.policy(giver.district_id, gateway.clock())
    rules = policy.time_bank
    relation = await relation_of(recipient.user_id, principal.user_id)
    if relation is None or relation not in rules.gift_recipients:
        what = relation.value if relation else "not an approved linked relative"
        raise policy_refusal(
            policy_rules.PolicyForbids(
                GIFT_RULE, version, f"hours may not be gifted to this person ({what})"
            )
        )
    if recipient.chain != giver.chain:
        raise Conflict(
            "ledger.other_district",
            f"the recipient keeps hours in district {recipient.chain}, not {giver.chain}",
        )
    cap = rules.account_cap_minutes
    await _check_spendable(gateway, giver, cmd.minutes, cap=cap, version=version)
    # A quick answer for the common case; the ledger checks the cap again under the chain lock.
    received = await gateway.store.balance(recipient.chain, recipient.account)
    if received + cmd.minutes > cap:
        raise policy_refusal(
            policy_rules.PolicyForbids(
                CAP_RULE,
                version,
                f"the recipient would hold more than the cap of {cap} minutes",
            )
        )


async def gift_hours(
    gateway: LedgerGateway, principal: Principal, cmd: GiftHours
) -> dict[str, Any]:
    entry_id = f"gift:{principal.user_id}:{cmd.request_id}"
    actor = f"user:{principal.user_id}"
    giver = await gateway.holder(principal.user_id)

    async def check() -> None:
        try:
            await _check_gift(gateway, principal, giver, cmd)
        except RECORDED as refusal:
            proposal, _ = await gateway.gift_proposal(
                giver,
                recipient_id=cmd.recipient_id,
                minutes=cmd.minutes,
                entry_id=entry_id,
                actor=actor,
            )
            await gateway.refuse(proposal, refusal)
            raise

    async def append() -> Entry:
        return await gateway.gift(
            giver_id=principal.user_id,
            recipient_id=cmd.recipient_id,
            minutes=cmd.minutes,
            entry_id=entry_id,
            actor=actor,
        )

    entry = await _spend(gateway, giver, entry_id, check, append)
    return await _result(gateway, giver, entry)


async def _spend(
    gateway: LedgerGateway,
    holder: Holder,
    entry_id: str,
    check: Callable[[], Awaitable[None]],
    append: Callable[[], Awaitable[Entry]],
) -> Entry:
    """Check, then append, holding the holder's row lock, as booking requests take it before
    placing an hours hold: a gift and a request cannot both spend the same minutes. A refusal
    (the checks' or the ledger's) is recorded against `entry_id` in the same transaction, so it
    is committed before it is raised."""
    refusal: ApiError | None = None
    async with booking_transaction() as tx:
        with publishing_into(tx):
            await payments.lock_user(holder.user_id, tx.connection)
            try:
                if await _first_attempt(gateway, holder, entry_id):
                    await check()
                entry = await append()
            except ApiError as error:
                refusal = error
    if refusal is not None:
        raise refusal
    return entry


async def donate_hours(
    gateway: LedgerGateway, principal: Principal, cmd: DonateHours
) -> dict[str, Any]:
    entry_id = f"donate:{principal.user_id}:{cmd.request_id}"
    actor = f"user:{principal.user_id}"
    donor = await gateway.holder(principal.user_id)

    async def check() -> None:
        try:
            await _check_spendable(gateway, donor, cmd.minutes, cap=None, version=0)
        except RECORDED as refusal:
            proposal, _ = await gateway.donate_proposal(
                donor, minutes=cmd.minutes, entry_id=entry_id, actor=actor
            )
            await gateway.refuse(proposal, refusal)
            raise

    async def append() -> Entry:
        return await gateway.donate(
            donor_id=principal.user_id, minutes=cmd.minutes, entry_id=entry_id, actor=actor
        )

    entry = await _spend(gateway, donor, entry_id, check, append)
    return await _result(gateway, donor, entry)
