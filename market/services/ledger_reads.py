"""Reading the ledger: entries, proofs, keys, balances, statements, receipts, settlement.

Who reads what:
- public: checkpoints and co-signatures, public keys, inclusion proofs (hashes only) and
  consistency proofs: they reveal nothing about anyone and let anyone check the log.
- entries by range: auditors, and centre admins of the chain's top-level district.
- an account's balance, statement and receipts: the account's owner, centre admins of the
  owner's district (subtree) and auditors.
- the settlement report: centre admins and auditors.
- minutes by service category and month: auditors, and centre admins of the chain's district.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from ledger.checkpoint import Checkpoint, key_history
from ledger.entries import Entry
from ledger.receipt import build_receipt
from ledger.reports import MAX_PERIODS, category_report, month_count, month_periods
from ledger.service import consistency_proof, inclusion_proof, tree_root
from ledger.transfer import settlement_report
from market.errors import Conflict, Forbidden, InvalidInput, NotFound
from market.models import Role
from market.schemas.ledger import CategoryReportQuery
from market.services import checkpoints, witnesses
from market.services.checkpoints import Witnessed
from market.services.ledger import Holder, LedgerGateway
from market.services.ledger_errors import ledger_errors
from market.services.scope import Principal
from market.services.stats import LOCAL_TIME

MAX_PAGE = 500
MAX_STATEMENT = 200


def entry_json(entry: Entry) -> dict[str, Any]:
    return {
        "district": entry.district,
        "seq": entry.seq,
        "id": entry.id,
        "kind": str(entry.kind),
        "debit": entry.debit,
        "credit": entry.credit,
        "minutes": entry.minutes,
        "category": entry.category,
        "ref": entry.ref,
        "actor": entry.actor,
        "policy": entry.policy,
        "at_ms": entry.at_ms,
        "meta": dict(entry.meta),
        "hash": entry.hash.hex(),
        "body": entry.body.decode("utf-8"),
    }


def _bad(field: str, problem: str) -> InvalidInput:
    return InvalidInput(
        "invalid_input", f"{field} {problem}", [{"field": field, "problem": problem}]
    )


async def require_chain_reader(gateway: LedgerGateway, principal: Principal, chain: str) -> None:
    district = await gateway.district_of_chain(chain)
    if principal.role is Role.auditor or principal.administers(district.id):
        return
    raise Forbidden(
        "ledger.forbidden", f"only auditors and centre admins of {chain} read its entries"
    )


async def entries_page(
    gateway: LedgerGateway, principal: Principal, chain: str, start: int, end: int
) -> tuple[int, list[Entry]]:
    await require_chain_reader(gateway, principal, chain)
    if start < 0:
        raise _bad("start", "must be 0 or more")
    if end <= start:
        raise _bad("end", "must be greater than start")
    if end - start > MAX_PAGE:
        raise _bad("end", f"at most {MAX_PAGE} entries per page")
    size = (await gateway.store.head(chain)).size
    if start > size:
        raise _bad("start", f"is beyond the chain's {size} entries")
    return size, await gateway.store.entries(chain, start, min(end, size))


async def find_entry(
    gateway: LedgerGateway, chain: str, *, seq: int | None, entry_id: str | None
) -> Entry:
    if (seq is None) == (entry_id is None):
        raise _bad("seq", "give exactly one of seq and entry_id")
    if entry_id is not None:
        entry = await gateway.store.entry(chain, entry_id)
        if entry is None:
            raise NotFound("ledger.unknown_entry", f"no entry {entry_id!r} in {chain}")
        return entry
    assert seq is not None
    found = await gateway.store.entries(chain, seq, seq + 1) if seq >= 0 else []
    if not found:
        raise NotFound("ledger.unknown_entry", f"no entry at seq {seq} in {chain}")
    return found[0]


async def inclusion(
    gateway: LedgerGateway,
    chain: str,
    *,
    seq: int | None,
    entry_id: str | None,
    size: int | None,
) -> dict[str, Any]:
    """Inclusion proof of one entry in the latest checkpoint (or in the tree of `size`)."""
    await gateway.district_of_chain(chain)
    entry = await find_entry(gateway, chain, seq=seq, entry_id=entry_id)
    cp: Checkpoint | None = None
    if size is None:
        cp = await checkpoints.require_latest(gateway, chain)
        size = cp.size
    if entry.seq >= size:
        raise Conflict(
            "ledger.not_checkpointed",
            f"entry {entry.seq} is not in a tree of size {size}; wait for the next checkpoint",
        )
    async with ledger_errors():
        proof = await inclusion_proof(gateway.store, chain, entry.seq, size)
        root = cp.root if cp is not None else await tree_root(gateway.store, chain, size)
    result: dict[str, Any] = {
        "district": chain,
        "seq": entry.seq,
        "entry_id": entry.id,
        "leaf_hash": entry.hash.hex(),
        "tree_size": size,
        "root": root.hex(),
        "proof": [p.hex() for p in proof],
    }
    if cp is not None:
        result["checkpoint"] = (await checkpoints.witnessed(gateway, cp)).to_json()
    return result


async def consistency(gateway: LedgerGateway, chain: str, old: int, new: int) -> dict[str, Any]:
    await gateway.district_of_chain(chain)
    size = (await gateway.store.head(chain)).size
    if old < 1:
        raise _bad("old", "must be 1 or more")
    if new < old:
        raise _bad("new", "must be at least old")
    if new > size:
        raise _bad("new", f"is beyond the chain's {size} entries")
    async with ledger_errors():
        proof = await consistency_proof(gateway.store, chain, old, new)
        old_root = await tree_root(gateway.store, chain, old)
        new_root = await tree_root(gateway.store, chain, new)
    return {
        "district": chain,
        "old_size": old,
        "new_size": new,
        "old_root": old_root.hex(),
        "new_root": new_root.hex(),
        "proof": [p.hex() for p in proof],
    }


async def public_keys(gateway: LedgerGateway, chain: str) -> dict[str, Any]:
    await gateway.district_of_chain(chain)
    gateway.signer(chain)  # a district that never signed still has a key to publish
    local = await gateway.local_chains()
    return {
        "district": chain,
        "history": key_history(gateway.keys, chain).to_json(),
        "witnesses": witnesses.centre_witness_keys(gateway, [c for c in local if c != chain]),
    }


# ---- accounts ---------------------------------------------------------------------------------


async def account_for(gateway: LedgerGateway, principal: Principal, user_id: UUID) -> Holder:
    holder = await gateway.holder(user_id)
    if (
        principal.user_id == holder.user_id
        or principal.role is Role.auditor
        or principal.administers(holder.district_id)
    ):
        return holder
    raise Forbidden("ledger.forbidden", "you may read only your own account")


async def balance(gateway: LedgerGateway, principal: Principal, user_id: UUID) -> dict[str, Any]:
    holder = await account_for(gateway, principal, user_id)
    minutes = await gateway.store.balance(holder.chain, holder.account)
    holds = [h for h in await gateway.store.open_holds(holder.chain) if h.debit == holder.account]
    return {
        "user_id": str(holder.user_id),
        "district": holder.chain,
        "account": holder.account,
        "balance_minutes": minutes,
        "held_minutes": sum(h.minutes for h in holds),
    }


async def statement(
    gateway: LedgerGateway, principal: Principal, user_id: UUID, *, after: int, limit: int
) -> dict[str, Any]:
    """An account's entries, each with its inclusion proof against the latest checkpoint."""
    if after < -1:
        raise _bad("after", "must be -1 or more")
    if not 1 <= limit <= MAX_STATEMENT:
        raise _bad("limit", f"must be 1-{MAX_STATEMENT}")
    holder = await account_for(gateway, principal, user_id)
    entries = await gateway.store.statement(
        holder.chain, holder.account, after_seq=after, limit=limit
    )
    cp = await checkpoints.latest_checkpoint(holder.chain)
    lines = []
    for entry in entries:
        line = entry_json(entry)
        line["signed_minutes"] = entry.minutes if entry.credit == holder.account else -entry.minutes
        if cp is not None and entry.seq < cp.size:
            proof = await inclusion_proof(gateway.store, holder.chain, entry.seq, cp.size)
            line["proof"] = {"tree_size": cp.size, "hashes": [p.hex() for p in proof]}
        else:
            line["proof"] = None  # not covered by a checkpoint yet
        lines.append(line)
    view: Witnessed | None = await checkpoints.witnessed(gateway, cp) if cp else None
    return {
        "user_id": str(holder.user_id),
        "district": holder.chain,
        "account": holder.account,
        "balance_minutes": await gateway.store.balance(holder.chain, holder.account),
        "checkpoint": view.to_json() if view else None,
        "lines": lines,
        "next_after": entries[-1].seq if len(entries) == limit else None,
    }


async def receipt(
    gateway: LedgerGateway, principal: Principal, chain: str, entry_id: str
) -> dict[str, Any]:
    district = await gateway.district_of_chain(chain)
    entry = await find_entry(gateway, chain, seq=None, entry_id=entry_id)
    own = f"user:{principal.user_id}"
    if not (
        own in (entry.debit, entry.credit)
        or principal.role is Role.auditor
        or principal.administers(district.id)
    ):
        raise Forbidden("ledger.forbidden", "a receipt is for the entry's own account holders")
    cp = await checkpoints.require_latest(gateway, chain)
    if entry.seq >= cp.size:
        raise Conflict(
            "ledger.not_checkpointed",
            f"entry {entry.id} is newer than the latest checkpoint; retry after the next one",
        )
    view = await checkpoints.witnessed(gateway, cp)
    if not view.witnessed:
        raise Conflict(
            "ledger.not_witnessed",
            f"the latest checkpoint of {chain} has {len(view.valid)} of the {view.quorum} "
            "co-signatures a receipt needs; retry once witnesses have signed",
        )
    proof = await inclusion_proof(gateway.store, chain, entry.seq, cp.size)
    cosigned = view.valid
    return build_receipt(
        body=entry.body,
        index=entry.seq,
        proof=proof,
        checkpoint=cp,
        keys=key_history(gateway.keys, chain),
        cosignatures=[c.cosignature for c in cosigned],
        witness_keys={c.cosignature.witness_id: c.public for c in cosigned},
        threshold=view.quorum,
    )


async def settlement(gateway: LedgerGateway, principal: Principal) -> dict[str, Any]:
    if principal.role not in (Role.auditor, Role.centre_admin):
        raise Forbidden("ledger.forbidden", "only centre admins and auditors read the settlement")
    report = await settlement_report(gateway.store)
    return {
        "positions": [
            {"debtor": p.debtor, "creditor": p.creditor, "minutes": p.minutes}
            for p in report.positions
        ],
        "open_holds": report.open_holds,
        "mirrored": report.mirrored,
        "mismatches": [
            {"a": a, "b": b, "clearing_b_in_a": ab, "clearing_a_in_b": ba}
            for a, b, ab, ba in report.mismatches
        ],
    }


# ---- reports ----------------------------------------------------------------------------------


def _first_day(month: str) -> date:
    year, number = month.split("-")  # the schema's pattern: YYYY-MM
    return date(int(year), int(number), 1)


async def categories(
    gateway: LedgerGateway, principal: Principal, chain: str, query: CategoryReportQuery
) -> dict[str, Any]:
    """Minutes and entries per service category and kind in each local month of the range."""
    await require_chain_reader(gateway, principal, chain)
    first = _first_day(query.first)
    last = _first_day(query.last or query.first)
    count = month_count(first, last)
    if count < 1:
        raise _bad("last", "must not be before first")
    if count > MAX_PERIODS:
        raise _bad("last", f"must be at most {MAX_PERIODS} months from first, counting both")
    periods = month_periods(first, last, tz=LOCAL_TIME)
    report = await category_report(gateway.store, chain, periods, category=query.category)
    return {
        "district": chain,
        "category": report.category,
        "time_zone": str(LOCAL_TIME),
        "months": [
            {
                "month": row.period.label,
                "start_ms": row.period.start_ms,
                "end_ms": row.period.end_ms,
                "totals": [
                    {
                        "category": t.category,
                        "kind": t.kind,
                        "entries": t.entries,
                        "minutes": t.minutes,
                    }
                    for t in row.totals
                ],
            }
            for row in report.periods
        ],
    }
