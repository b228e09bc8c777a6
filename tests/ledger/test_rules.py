"""The double-entry rule table of `ledger.rules`, one scenario per test."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ledger.entries import ZERO_HASH, Entry, Kind, build_entry
from ledger.errors import (
    AlreadyReversed,
    InsufficientMinutes,
    InvalidAccount,
    InvalidEntry,
    MinutesOutOfRange,
    NotReversible,
    PolicyForbids,
    TransferConflict,
    UnknownEntry,
)
from ledger.rules import Limits, Proposal, check, deltas, differing_field, entry_content

LIMITS = Limits(max_minutes=600)
HOLD_HASH = "ab" * 32


def prop(kind: Kind, debit: str, credit: str, minutes: int = 30, **kw: Any) -> Proposal:
    fields: dict[str, Any] = {"district": "A", "id": "p1", "actor": "centre", "policy": 1}
    fields.update(at_ms=1_000, **kw)
    return Proposal(kind=kind, debit=debit, credit=credit, minutes=minutes, **fields)


def entry(kind: Kind, debit: str, credit: str, minutes: int = 30, **kw: Any) -> Entry:
    base: dict[str, Any] = {"district": "A", "seq": 0, "prev": ZERO_HASH, "id": "e1"}
    base.update(actor="centre", policy=1, at_ms=1, **kw)
    return build_entry(kind=kind, debit=debit, credit=credit, minutes=minutes, **base)


def ok(p: Proposal, balances: dict[str, int] | None = None, **kw: Any) -> None:
    kw.setdefault("target", None)
    kw.setdefault("target_closed_by", None)
    check(p, balances=balances or {}, limits=LIMITS, **kw)


TRANSFER = {"transfer": "t1", "counterpart": "B"}


class TestShape:
    def test_deposit_from_issuance(self) -> None:
        ok(prop(Kind.DEPOSIT, "issuance", "user:v"))

    def test_deposit_from_pool_needs_pool_minutes(self) -> None:
        with pytest.raises(InsufficientMinutes):
            ok(prop(Kind.DEPOSIT, "pool", "user:v"), {"pool": 10})
        ok(prop(Kind.DEPOSIT, "pool", "user:v"), {"pool": 30})

    def test_debit_equals_credit(self) -> None:
        with pytest.raises(InvalidEntry) as err:
            ok(prop(Kind.GIFT, "user:a", "user:a"), {"user:a": 100})
        assert err.value.field == "credit"

    def test_zero_minutes(self) -> None:
        with pytest.raises(MinutesOutOfRange):
            ok(prop(Kind.DEPOSIT, "issuance", "user:v", 0))

    def test_negative_minutes(self) -> None:
        with pytest.raises(MinutesOutOfRange):
            ok(prop(Kind.DEPOSIT, "issuance", "user:v", -5))

    def test_ceiling_is_exclusive(self) -> None:
        ok(prop(Kind.DEPOSIT, "issuance", "user:v", 599))
        with pytest.raises(MinutesOutOfRange) as err:
            ok(prop(Kind.DEPOSIT, "issuance", "user:v", 600))
        assert err.value.ceiling == 600

    def test_float_minutes(self) -> None:
        with pytest.raises(InvalidEntry) as err:
            ok(prop(Kind.DEPOSIT, "issuance", "user:v", 1.5))  # type: ignore[arg-type]
        assert err.value.field == "minutes"

    def test_bad_account_name(self) -> None:
        with pytest.raises(InvalidAccount):
            ok(prop(Kind.DEPOSIT, "issuance", "bank:v"))

    def test_deposit_into_pool_refused(self) -> None:
        with pytest.raises(InvalidEntry):
            ok(prop(Kind.DEPOSIT, "issuance", "pool"))

    def test_redeem_to_issuance(self) -> None:
        ok(prop(Kind.REDEEM, "user:e", "issuance"), {"user:e": 30})

    def test_redeem_to_provider(self) -> None:
        ok(prop(Kind.REDEEM, "user:e", "user:provider"), {"user:e": 30})

    def test_redeem_from_issuance_refused(self) -> None:
        with pytest.raises(InvalidEntry):
            ok(prop(Kind.REDEEM, "issuance", "user:e"))

    def test_gift_to_pool_refused(self) -> None:
        with pytest.raises(InvalidEntry):
            ok(prop(Kind.GIFT, "user:a", "pool"), {"user:a": 100})

    def test_donate_to_user_refused(self) -> None:
        with pytest.raises(InvalidEntry):
            ok(prop(Kind.DONATE, "user:a", "user:b"), {"user:a": 100})

    def test_expire(self) -> None:
        ok(prop(Kind.EXPIRE, "user:a", "expired"), {"user:a": 30})

    def test_key_rotation_is_not_an_accounting_entry(self) -> None:
        with pytest.raises(InvalidEntry) as err:
            ok(prop(Kind.KEY_ROTATION, "issuance", "user:a"))
        assert err.value.field == "kind"

    def test_empty_id(self) -> None:
        with pytest.raises(InvalidEntry) as err:
            ok(replace(prop(Kind.DEPOSIT, "issuance", "user:a"), id=""))
        assert err.value.field == "id"


class TestBalances:
    def test_user_cannot_go_negative(self) -> None:
        with pytest.raises(InsufficientMinutes) as err:
            ok(prop(Kind.GIFT, "user:a", "user:b", 31), {"user:a": 30})
        assert (err.value.account, err.value.available, err.value.requested) == ("user:a", 30, 31)

    def test_user_may_reach_zero(self) -> None:
        ok(prop(Kind.GIFT, "user:a", "user:b", 30), {"user:a": 30})

    def test_missing_balance_counts_as_zero(self) -> None:
        with pytest.raises(InsufficientMinutes):
            ok(prop(Kind.DONATE, "user:a", "pool"))

    def test_clearing_may_go_negative(self) -> None:
        meta = {**TRANSFER, "hold": HOLD_HASH}
        ok(prop(Kind.TRANSFER_CREDIT, "clearing:B", "user:p", meta=meta))

    def test_deltas_sum_to_zero(self) -> None:
        moved = deltas(Kind.GIFT, "user:a", "user:b", 7)
        assert moved == (("user:a", -7), ("user:b", 7))

    def test_hold_post_moves_nothing(self) -> None:
        assert deltas(Kind.HOLD_POST, "user:a", "clearing:B", 7) == ()


class TestReverse:
    original = entry(Kind.DEPOSIT, "issuance", "user:v", 30)

    def test_reverse_swaps_accounts(self) -> None:
        p = prop(Kind.REVERSE, "user:v", "issuance", 30, ref="e1")
        ok(p, {"user:v": 30}, target=self.original)

    def test_reverse_needs_existing_entry(self) -> None:
        with pytest.raises(UnknownEntry):
            ok(prop(Kind.REVERSE, "user:v", "issuance", 30, ref="nope"), {"user:v": 30})

    def test_reverse_twice(self) -> None:
        p = prop(Kind.REVERSE, "user:v", "issuance", 30, ref="e1")
        with pytest.raises(AlreadyReversed) as err:
            ok(p, {"user:v": 30}, target=self.original, target_closed_by="r0")
        assert err.value.reversal_id == "r0"

    def test_reverse_with_other_minutes(self) -> None:
        p = prop(Kind.REVERSE, "user:v", "issuance", 20, ref="e1")
        with pytest.raises(InvalidEntry):
            ok(p, {"user:v": 30}, target=self.original)

    def test_reverse_without_swapping(self) -> None:
        p = prop(Kind.REVERSE, "issuance", "user:v", 30, ref="e1")
        with pytest.raises(InvalidEntry):
            ok(p, target=self.original)

    def test_reverse_spent_minutes(self) -> None:
        p = prop(Kind.REVERSE, "user:v", "issuance", 30, ref="e1")
        with pytest.raises(InsufficientMinutes):
            ok(p, {"user:v": 10}, target=self.original)

    def test_reverse_a_hold_refused(self) -> None:
        hold = entry(Kind.HOLD_PENDING, "user:a", "clearing:B", 30, meta=TRANSFER)
        with pytest.raises(NotReversible):
            ok(prop(Kind.REVERSE, "clearing:B", "user:a", 30, ref="e1"), target=hold)

    def test_reverse_of_other_district_entry(self) -> None:
        other = replace(self.original, district="B")
        with pytest.raises(UnknownEntry):
            ok(prop(Kind.REVERSE, "user:v", "issuance", 30, ref="e1"), {"user:v": 30}, target=other)


class TestHolds:
    hold = entry(Kind.HOLD_PENDING, "user:a", "clearing:B", 30, meta=TRANSFER)

    def test_hold_pending(self) -> None:
        ok(prop(Kind.HOLD_PENDING, "user:a", "clearing:B", meta=TRANSFER), {"user:a": 30})

    def test_hold_pending_counts_against_balance(self) -> None:
        with pytest.raises(InsufficientMinutes):
            ok(prop(Kind.HOLD_PENDING, "user:a", "clearing:B", meta=TRANSFER), {"user:a": 29})

    def test_hold_to_own_clearing_refused(self) -> None:
        meta = {"transfer": "t1", "counterpart": "A"}
        with pytest.raises(InvalidEntry):
            ok(prop(Kind.HOLD_PENDING, "user:a", "clearing:A", meta=meta), {"user:a": 30})

    def test_hold_needs_transfer_meta(self) -> None:
        with pytest.raises(InvalidEntry) as err:
            ok(prop(Kind.HOLD_PENDING, "user:a", "clearing:B"), {"user:a": 30})
        assert err.value.field == "meta"

    def test_hold_counterpart_must_match(self) -> None:
        meta = {"transfer": "t1", "counterpart": "C"}
        with pytest.raises(InvalidEntry):
            ok(prop(Kind.HOLD_PENDING, "user:a", "clearing:B", meta=meta), {"user:a": 30})

    def test_post(self) -> None:
        p = prop(Kind.HOLD_POST, "user:a", "clearing:B", ref="e1", meta={"transfer": "t1"})
        ok(p, target=self.hold)

    def test_void(self) -> None:
        p = prop(Kind.HOLD_VOID, "clearing:B", "user:a", ref="e1", meta={"transfer": "t1"})
        ok(p, target=self.hold)

    def test_post_after_void(self) -> None:
        p = prop(Kind.HOLD_POST, "user:a", "clearing:B", ref="e1", meta={"transfer": "t1"})
        with pytest.raises(TransferConflict):
            ok(p, target=self.hold, target_closed_by="v1")

    def test_void_with_other_minutes(self) -> None:
        p = prop(Kind.HOLD_VOID, "clearing:B", "user:a", 10, ref="e1", meta={"transfer": "t1"})
        with pytest.raises(InvalidEntry):
            ok(p, target=self.hold)

    def test_post_of_a_deposit(self) -> None:
        deposit = entry(Kind.DEPOSIT, "issuance", "user:a", 30)
        p = prop(Kind.HOLD_POST, "user:a", "clearing:B", ref="e1", meta={"transfer": "t1"})
        with pytest.raises(InvalidEntry):
            ok(p, target=deposit)

    def test_post_of_unknown_hold(self) -> None:
        p = prop(Kind.HOLD_POST, "user:a", "clearing:B", ref="e9", meta={"transfer": "t1"})
        with pytest.raises(UnknownEntry):
            ok(p)

    def test_credit_needs_hold_hash(self) -> None:
        with pytest.raises(InvalidEntry) as err:
            ok(prop(Kind.TRANSFER_CREDIT, "clearing:B", "user:p", meta=TRANSFER))
        assert err.value.field == "meta"

    def test_credit_with_malformed_hash(self) -> None:
        meta = {**TRANSFER, "hold": "XYZ"}
        with pytest.raises(InvalidEntry):
            ok(prop(Kind.TRANSFER_CREDIT, "clearing:B", "user:p", meta=meta))


class TestContent:
    def test_same_content(self) -> None:
        e = entry(Kind.DEPOSIT, "issuance", "user:v", 30, id="p1")
        p = prop(Kind.DEPOSIT, "issuance", "user:v", 30, actor="centre")
        assert differing_field(entry_content(e), p.content()) is None

    def test_time_is_not_content(self) -> None:
        e = entry(Kind.DEPOSIT, "issuance", "user:v", 30, id="p1")
        p = replace(prop(Kind.DEPOSIT, "issuance", "user:v", 30), at_ms=99_999)
        assert differing_field(entry_content(e), p.content()) is None

    def test_first_differing_field_named(self) -> None:
        e = entry(Kind.DEPOSIT, "issuance", "user:v", 30, id="p1")
        p = prop(Kind.DEPOSIT, "issuance", "user:w", 31)
        assert differing_field(entry_content(e), p.content()) == "credit"

    def test_meta_differs(self) -> None:
        e = entry(Kind.DEPOSIT, "issuance", "user:v", 30, id="p1", meta={"b": 1})
        p = prop(Kind.DEPOSIT, "issuance", "user:v", 30, meta={"b": 2})
        assert differing_field(entry_content(e), p.content()) == "meta"


class TestBalanceCap:
    limits = Limits(
        max_minutes=600, max_balance=lambda d, a: 100 if a.startswith("user:") else None
    )

    def test_deposit_up_to_the_cap(self) -> None:
        p = prop(Kind.DEPOSIT, "issuance", "user:v", 40)
        check(p, balances={"user:v": 60}, target=None, target_closed_by=None, limits=self.limits)

    def test_deposit_above_the_cap(self) -> None:
        p = prop(Kind.DEPOSIT, "issuance", "user:v", 41)
        with pytest.raises(PolicyForbids) as err:
            check(
                p, balances={"user:v": 60}, target=None, target_closed_by=None, limits=self.limits
            )
        assert (err.value.rule, err.value.version) == ("max_balance", 1)

    def test_uncapped_account(self) -> None:
        p = prop(Kind.DONATE, "user:v", "pool", 50)
        check(p, balances={"user:v": 50, "pool": 10_000}, target=None, target_closed_by=None,
              limits=self.limits)  # fmt: skip
