"""verify_chain: valid histories pass; every kind of damage is caught at the first bad seq."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.canonical import encode
from ledger.entries import ISSUANCE, POOL, Entry, Kind, build_entry, clearing_account
from ledger.errors import ChainBroken, NotCanonical
from ledger.keys import Signer
from ledger.verify import VerifyReport, verify_chain
from tests.ledger.test_verify_history import ChainBuilder, random_history

SIGNER = Signer.generate()
KEYS = {SIGNER.key_id: SIGNER.public}


def verify(bodies: list[bytes], builder: ChainBuilder | None = None, **kw: object) -> VerifyReport:
    if builder is not None and "checkpoints" not in kw:
        kw["checkpoints"] = [builder.checkpoint(SIGNER)]
    return verify_chain(bodies, district="xuhui", public_keys=KEYS, **kw)  # type: ignore[arg-type]


histories = st.builds(random_history, st.integers(0, 10_000), st.integers(2, 60))
# LEDGER_EXAMPLES=2000 for a deeper run than the default suite's.
relaxed = settings(
    max_examples=int(os.environ.get("LEDGER_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class TestValidHistories:
    @relaxed
    @given(histories, st.data())
    def test_pass_with_checkpoints_at_any_sizes(
        self, builder: ChainBuilder, data: st.DataObject
    ) -> None:
        sizes = data.draw(st.lists(st.integers(0, len(builder.entries)), max_size=3))
        checkpoints = [builder.checkpoint(SIGNER, size) for size in sizes]
        report = verify(builder.bodies, checkpoints=checkpoints, stored_balances=builder.balances)
        assert report.ok, report.reason
        assert report.first_bad_seq is None
        assert report.entries == len(builder.entries)
        assert report.head == builder.entries[-1].hash
        assert sum(report.balances.values()) == 0
        assert report.checkpoints_verified == len(checkpoints)

    def test_empty_chain(self) -> None:
        report = verify([])
        assert report.ok and report.entries == 0

    def test_bytearray_and_memoryview_bodies(self) -> None:
        builder = random_history(11, 20)
        mixed = [bytearray(b) if i % 2 else memoryview(b) for i, b in enumerate(builder.bodies)]
        assert verify(mixed, builder).ok  # type: ignore[arg-type]

    def test_text_bodies_are_refused(self) -> None:
        with pytest.raises(NotCanonical, match="bytes"):
            verify([random_history(11, 2).bodies[0].decode()])  # type: ignore[list-item]

    def test_small_batches_give_the_same_report(self) -> None:
        builder = random_history(11, 120)
        assert verify(builder.bodies, builder, batch=7) == verify(builder.bodies, builder)


class TestTampering:
    @relaxed
    @given(histories, st.data())
    def test_single_byte_change_names_the_changed_entry(
        self, builder: ChainBuilder, data: st.DataObject
    ) -> None:
        bodies = builder.bodies
        k = data.draw(st.integers(0, len(bodies) - 1))
        position = data.draw(st.integers(0, len(bodies[k]) - 1))
        value = data.draw(st.integers(0, 255).filter(lambda v: v != bodies[k][position]))
        changed = bytearray(bodies[k])
        changed[position] = value
        bodies[k] = bytes(changed)
        report = verify(bodies, builder)
        assert not report.ok
        assert report.first_bad_seq == k, report.reason

    @relaxed
    @given(histories, st.data())
    def test_deleted_entry(self, builder: ChainBuilder, data: st.DataObject) -> None:
        bodies = builder.bodies
        k = data.draw(st.integers(0, len(bodies) - 1))
        del bodies[k]
        report = verify(bodies, builder)
        assert report.first_bad_seq == k, report.reason

    @relaxed
    @given(histories, st.data())
    def test_swapped_pair(self, builder: ChainBuilder, data: st.DataObject) -> None:
        bodies = builder.bodies
        k = data.draw(st.integers(0, len(bodies) - 2))
        bodies[k], bodies[k + 1] = bodies[k + 1], bodies[k]
        report = verify(bodies, builder)
        assert report.first_bad_seq == k, report.reason

    @relaxed
    @given(histories, st.data())
    def test_truncation_below_a_checkpoint(
        self, builder: ChainBuilder, data: st.DataObject
    ) -> None:
        size = len(builder.entries)
        signed = data.draw(st.integers(1, size))
        kept = data.draw(st.integers(0, signed - 1))
        report = verify(builder.bodies[:kept], checkpoints=[builder.checkpoint(SIGNER, signed)])
        assert report.first_bad_seq == kept
        assert "missing" in report.reason

    def test_truncation_above_every_checkpoint_is_not_an_error(self) -> None:
        builder = random_history(2, 30)
        report = verify(builder.bodies[:25], checkpoints=[builder.checkpoint(SIGNER, 20)])
        assert report.ok

    def test_rewritten_tail_is_caught_by_the_checkpoint_root(self) -> None:
        builder = random_history(4, 30)
        checkpoint = builder.checkpoint(SIGNER)
        forged = ChainBuilder()
        for entry in builder.entries[:-1]:
            forged.entries.append(entry)
        forged.append(Kind.DEPOSIT, ISSUANCE, "user:mallory", 600)
        report = verify(forged.bodies, checkpoints=[checkpoint])
        assert report.first_bad_seq == 29
        assert "signed root" in report.reason

    def test_last_entry_without_a_checkpoint_is_blamed_on_the_link(self) -> None:
        builder = random_history(4, 10)
        bodies = builder.bodies
        bodies[8] = bodies[8].replace(b'"policy":1', b'"policy":2')
        report = verify(bodies)
        # Without entry 10 or a checkpoint nothing tells which of 8 and 9 was changed.
        assert report.first_bad_seq == 9

    def test_raise_if_bad(self) -> None:
        builder = random_history(4, 10)
        bodies = builder.bodies
        del bodies[3]
        with pytest.raises(ChainBroken) as info:
            verify(bodies, builder).raise_if_bad()
        assert info.value.seq == 3


def chain(*steps: tuple) -> ChainBuilder:
    builder = ChainBuilder()
    for kind, debit, credit, minutes, extra in steps:
        builder.append(kind, debit, credit, minutes, **extra)
    return builder


def deposit(user: str = "user:a", minutes: int = 60, **extra: object) -> tuple:
    return (Kind.DEPOSIT, ISSUANCE, user, minutes, extra)


def forged(builder: ChainBuilder, **fields: object) -> list[bytes]:
    """Append an entry built without any rule check, linked correctly."""
    last = builder.entries[-1]
    base = dict(
        district="xuhui",
        seq=last.seq + 1,
        prev=last.hash,
        id="forged",
        kind=Kind.GIFT,
        debit="user:a",
        credit="user:b",
        minutes=1,
        actor="x",
        policy=1,
        at_ms=1,
    )
    base.update(fields)
    return [*builder.bodies, build_entry(**base).body]  # type: ignore[arg-type]


class TestRules:
    def setup_method(self) -> None:
        self.builder = chain(deposit(), deposit("user:b", 30))

    def reason(self, **fields: object) -> tuple[int | None, str]:
        report = verify(forged(self.builder, **fields))
        assert not report.ok
        return report.first_bad_seq, report.reason

    def test_negative_user_balance(self) -> None:
        assert self.reason(minutes=61) == (2, "seq 2: user:a would go to -1 minutes")

    def test_negative_pool(self) -> None:
        seq, reason = self.reason(kind=Kind.DEPOSIT, debit=POOL, credit="user:a")
        assert seq == 2 and "pool would go to -1" in reason

    def test_wrong_shape(self) -> None:
        seq, reason = self.reason(kind=Kind.DONATE, credit="user:b")
        assert seq == 2 and "cannot move user:a -> user:b" in reason

    def test_debit_equal_to_credit(self) -> None:
        bodies = forged(self.builder)
        bodies[-1] = bodies[-1].replace(b'"credit":"user:b"', b'"credit":"user:a"')
        report = verify(bodies)
        assert report.first_bad_seq == 2 and "both user:a" in report.reason

    def test_wrong_district(self) -> None:
        seq, reason = self.reason(district="minhang")
        assert seq == 2 and "district is minhang" in reason

    def test_repeated_id(self) -> None:
        seq, reason = self.reason(id=self.builder.entries[0].id)
        assert seq == 2 and "repeats entry 0" in reason

    def test_minutes_ceiling(self) -> None:
        report = verify(forged(self.builder, minutes=61), max_minutes=61)
        assert report.first_bad_seq == 2 and "ceiling" in report.reason

    def test_key_rotation_is_not_an_accounting_entry(self) -> None:
        seq, reason = self.reason(kind=Kind.KEY_ROTATION)
        assert seq == 2 and "not an accounting entry" in reason

    def test_reverse_of_unknown_entry(self) -> None:
        seq, reason = self.reason(kind=Kind.REVERSE, debit="user:a", credit=ISSUANCE, ref="nope")
        assert seq == 2 and "no earlier entry" in reason

    def test_reverse_without_ref(self) -> None:
        seq, reason = self.reason(kind=Kind.REVERSE, debit="user:a", credit=ISSUANCE)
        assert seq == 2 and "must name in ref" in reason

    def test_reverse_with_other_minutes(self) -> None:
        first = self.builder.entries[0]
        seq, reason = self.reason(
            kind=Kind.REVERSE, debit="user:a", credit=ISSUANCE, minutes=5, ref=first.id
        )
        assert seq == 2 and "swap the accounts and keep the minutes" in reason

    def test_reverse_twice(self) -> None:
        first = self.builder.entries[0]
        self.builder.append(Kind.REVERSE, "user:a", ISSUANCE, 60, ref=first.id)
        self.builder.append(Kind.DEPOSIT, ISSUANCE, "user:a", 60)
        seq, reason = self.reason(
            kind=Kind.REVERSE, debit="user:a", credit=ISSUANCE, minutes=60, ref=first.id
        )
        assert seq == 4 and "already closed" in reason

    def test_reverse_of_a_reversal(self) -> None:
        first = self.builder.entries[0]
        reversal = self.builder.append(Kind.REVERSE, "user:a", ISSUANCE, 60, ref=first.id)
        seq, reason = self.reason(
            kind=Kind.REVERSE, debit=ISSUANCE, credit="user:a", minutes=60, ref=reversal.id
        )
        assert seq == 3 and "cannot be reversed" in reason

    def test_reversal_may_not_overdraw(self) -> None:
        self.builder.append(Kind.GIFT, "user:a", "user:b", 60)
        first = self.builder.entries[0]
        seq, reason = self.reason(
            kind=Kind.REVERSE, debit="user:a", credit=ISSUANCE, minutes=60, ref=first.id
        )
        assert seq == 3 and "would go to -60" in reason


def hold_chain() -> tuple[ChainBuilder, Entry]:
    builder = chain(deposit())
    hold = builder.append(
        Kind.HOLD_PENDING,
        "user:a",
        clearing_account("minhang"),
        20,
        meta={"transfer": "t1", "counterpart": "minhang"},
    )
    return builder, hold


class TestTransfers:
    def test_hold_moves_minutes_out_of_the_user(self) -> None:
        builder, _ = hold_chain()
        report = verify(builder.bodies)
        assert report.ok
        assert report.balances["user:a"] == 40 and report.balances["clearing:minhang"] == 20
        [record] = report.transfers
        assert (record.role, record.state, record.counterpart) == ("hold", "pending", "minhang")

    def test_post_moves_nothing_and_closes(self) -> None:
        builder, hold = hold_chain()
        builder.append(
            Kind.HOLD_POST, "user:a", "clearing:minhang", 20, ref=hold.id, meta={"transfer": "t1"}
        )
        report = verify(builder.bodies)
        assert report.ok and report.balances["user:a"] == 40
        assert report.transfers[0].state == "posted"

    def test_void_returns_the_minutes(self) -> None:
        builder, hold = hold_chain()
        builder.append(
            Kind.HOLD_VOID, "clearing:minhang", "user:a", 20, ref=hold.id, meta={"transfer": "t1"}
        )
        report = verify(builder.bodies)
        assert report.ok and report.balances["user:a"] == 60
        assert report.transfers[0].state == "voided"

    def test_closing_a_hold_twice(self) -> None:
        builder, hold = hold_chain()
        builder.append(
            Kind.HOLD_VOID, "clearing:minhang", "user:a", 20, ref=hold.id, meta={"transfer": "t1"}
        )
        bodies = forged(
            builder,
            kind=Kind.HOLD_POST,
            debit="user:a",
            credit="clearing:minhang",
            minutes=20,
            ref=hold.id,
            meta={"transfer": "t1"},
        )
        report = verify(bodies)
        assert report.first_bad_seq == 3 and "already closed" in report.reason

    def test_post_with_other_minutes(self) -> None:
        builder, hold = hold_chain()
        bodies = forged(
            builder,
            kind=Kind.HOLD_POST,
            debit="user:a",
            credit="clearing:minhang",
            minutes=21,
            ref=hold.id,
            meta={"transfer": "t1"},
        )
        assert "does not match" in verify(bodies).reason

    def test_post_of_another_transfer(self) -> None:
        builder, hold = hold_chain()
        bodies = forged(
            builder,
            kind=Kind.HOLD_POST,
            debit="user:a",
            credit="clearing:minhang",
            minutes=20,
            ref=hold.id,
            meta={"transfer": "t2"},
        )
        assert "names transfer t2" in verify(bodies).reason

    def test_post_of_a_non_hold(self) -> None:
        builder, _ = hold_chain()
        bodies = forged(
            builder,
            kind=Kind.HOLD_POST,
            debit="user:a",
            credit="clearing:minhang",
            minutes=20,
            ref=builder.entries[0].id,
            meta={"transfer": "t1"},
        )
        assert "not a pending hold" in verify(bodies).reason

    def test_hold_without_transfer_id(self) -> None:
        builder = chain(deposit())
        bodies = forged(builder, kind=Kind.HOLD_PENDING, credit="clearing:minhang", minutes=5)
        assert 'meta["transfer"]' in verify(bodies).reason

    def test_hold_with_wrong_counterpart(self) -> None:
        builder = chain(deposit())
        bodies = forged(
            builder,
            kind=Kind.HOLD_PENDING,
            credit="clearing:minhang",
            minutes=5,
            meta={"transfer": "t", "counterpart": "jingan"},
        )
        assert 'meta["counterpart"] must be minhang' in verify(bodies).reason

    def test_clearing_with_itself(self) -> None:
        builder = chain(deposit())
        bodies = forged(
            builder,
            kind=Kind.HOLD_PENDING,
            credit="clearing:xuhui",
            minutes=5,
            meta={"transfer": "t", "counterpart": "xuhui"},
        )
        assert "cannot clear with itself" in verify(bodies).reason

    def test_credit_without_hold_hash(self) -> None:
        builder = chain(deposit())
        bodies = forged(
            builder,
            kind=Kind.TRANSFER_CREDIT,
            debit="clearing:minhang",
            credit="user:a",
            minutes=5,
            meta={"transfer": "t", "counterpart": "minhang"},
        )
        assert 'meta["hold"]' in verify(bodies).reason


class TestCanonicalForm:
    def test_whitespace_is_refused_at_its_seq(self) -> None:
        builder = random_history(1, 5)
        bodies = builder.bodies
        bodies[2] = bodies[2].replace(b'"v":1', b'"v": 1')
        report = verify(bodies, builder)
        assert report.first_bad_seq == 2

    def test_reordered_keys_are_refused(self) -> None:
        builder = random_history(1, 5)
        bodies = builder.bodies
        obj = builder.entries[3].to_json()
        text = encode(obj).decode()
        bodies[3] = ('{"v":1,' + text[1:].replace(',"v":1', "")).encode()
        report = verify(bodies, builder)
        assert report.first_bad_seq == 3 and "canonical" in report.reason

    def test_non_ascii_entries_take_the_strict_path_and_pass(self) -> None:
        builder = ChainBuilder()
        builder.append(Kind.DEPOSIT, ISSUANCE, "user:a", 30, category="助浴")
        builder.append(Kind.GIFT, "user:a", "user:b", 10, ref="给孙女")
        assert verify(builder.bodies, builder).ok


class TestCheckpointsAndBalances:
    def test_bad_signature(self) -> None:
        builder = random_history(1, 10)
        cp = builder.checkpoint(SIGNER)
        bad = replace(cp, signature=bytes(64))
        report = verify(builder.bodies, checkpoints=[bad])
        assert not report.ok and report.first_bad_seq is None
        assert "signature" in report.reason

    def test_unknown_key(self) -> None:
        builder = random_history(1, 10)
        report = verify(builder.bodies, checkpoints=[builder.checkpoint(Signer.generate())])
        assert "signature" in report.reason

    def test_no_keys_given(self) -> None:
        builder = random_history(1, 10)
        report = verify_chain(
            builder.bodies, district="xuhui", checkpoints=[builder.checkpoint(SIGNER)]
        )
        assert "no public keys" in report.reason

    def test_checkpoint_of_another_district(self) -> None:
        builder = random_history(1, 10)
        cp = replace(builder.checkpoint(SIGNER), district="minhang")
        assert "minhang" in verify(builder.bodies, checkpoints=[cp]).reason

    def test_stored_balance_differs(self) -> None:
        builder = random_history(1, 10)
        stored = dict(builder.balances)
        stored["user:u0"] = stored.get("user:u0", 0) + 1
        stored[ISSUANCE] -= 1
        report = verify(builder.bodies, builder, stored_balances=stored)
        reasons = [p.reason for p in report.problems]
        want = builder.balances.get("user:u0", 0)
        assert f"stored balance of user:u0 is {want + 1}, replay gives {want}" in reasons
        assert any(r.startswith("stored balance of issuance") for r in reasons)

    def test_stored_balances_not_summing_to_zero(self) -> None:
        builder = random_history(1, 10)
        stored = dict(builder.balances)
        stored[ISSUANCE] -= 1
        report = verify(builder.bodies, builder, stored_balances=stored)
        assert "sum to -1" in report.reason

    def test_forged_root_with_valid_signature(self) -> None:
        builder = random_history(1, 10)
        cp = builder.checkpoint(SIGNER)
        from ledger.checkpoint import sign_checkpoint

        lying = sign_checkpoint(
            district="xuhui", size=10, root=hashlib.sha256(b"x").digest(), at_ms=1, signer=SIGNER
        )
        assert verify(builder.bodies, checkpoints=[cp]).ok
        assert verify(builder.bodies, checkpoints=[lying]).first_bad_seq == 9
