"""verify_mirrors: clearing accounts of two chains after cross-district transfers."""

from __future__ import annotations

from ledger.entries import ISSUANCE, Entry, Kind, clearing_account
from ledger.verify import VerifyReport, verify_chain, verify_mirrors
from tests.ledger.test_verify_history import ChainBuilder


class Pair:
    """Home chain A (xuhui) and serving chain B (minhang) running the two-phase transfer."""

    def __init__(self) -> None:
        self.a = ChainBuilder("xuhui")
        self.b = ChainBuilder("minhang")
        self.a.append(Kind.DEPOSIT, ISSUANCE, "user:elder", 300)
        self.b.append(Kind.DEPOSIT, ISSUANCE, "user:bob", 300)

    def hold(self, transfer: str, minutes: int, home: str = "a") -> Entry:
        chain, other = (self.a, "minhang") if home == "a" else (self.b, "xuhui")
        user = "user:elder" if home == "a" else "user:bob"
        return chain.append(
            Kind.HOLD_PENDING,
            user,
            clearing_account(other),
            minutes,
            meta={"transfer": transfer, "counterpart": other},
        )

    def credit(self, hold: Entry, minutes: int | None = None) -> Entry:
        serving = self.b if hold.district == "xuhui" else self.a
        return serving.append(
            Kind.TRANSFER_CREDIT,
            clearing_account(hold.district),
            "user:helper",
            minutes or hold.minutes,
            meta={
                "transfer": hold.transfer_id,
                "counterpart": hold.district,
                "hold": hold.hash.hex(),
            },
        )

    def close(self, hold: Entry, post: bool = True) -> Entry:
        chain = self.a if hold.district == "xuhui" else self.b
        return chain.append(
            Kind.HOLD_POST if post else Kind.HOLD_VOID,
            hold.debit if post else hold.credit,
            hold.credit if post else hold.debit,
            hold.minutes,
            ref=hold.id,
            meta={"transfer": hold.transfer_id},
        )

    def reports(self) -> list[VerifyReport]:
        reports = [
            verify_chain(self.a.bodies, district="xuhui"),
            verify_chain(self.b.bodies, district="minhang"),
        ]
        assert all(r.ok for r in reports), [r.reason for r in reports]
        return reports


class TestMirrors:
    def test_posted_transfers_both_ways_mirror(self) -> None:
        pair = Pair()
        first = pair.hold("t1", 60)
        pair.credit(first)
        pair.close(first)
        second = pair.hold("t2", 25, home="b")
        pair.credit(second)
        pair.close(second)
        report = verify_mirrors(pair.reports())
        assert report.ok, report.problems
        assert report.net == {("minhang", "xuhui"): -35, ("xuhui", "minhang"): 35}

    def test_voided_transfer_without_credit_mirrors(self) -> None:
        pair = Pair()
        hold = pair.hold("t1", 60)
        pair.close(hold, post=False)
        report = verify_mirrors(pair.reports())
        assert report.ok and report.net[("xuhui", "minhang")] == 0

    def test_transfer_in_flight_is_left_out(self) -> None:
        pair = Pair()
        hold = pair.hold("t1", 60)
        pair.credit(hold)
        report = verify_mirrors(pair.reports())
        assert report.ok, report.problems
        assert report.net[("xuhui", "minhang")] == 0

    def test_open_hold_not_yet_credited_is_left_out(self) -> None:
        pair = Pair()
        pair.hold("t1", 60)
        assert verify_mirrors(pair.reports()).ok

    def test_credit_without_a_hold(self) -> None:
        pair = Pair()
        ghost = pair.hold("t1", 60)
        pair.a.entries.pop()  # the hold never made it into the home chain
        pair.credit(ghost)
        report = verify_mirrors(pair.reports())
        assert any("has no hold in xuhui" in p for p in report.problems)

    def test_credit_for_a_voided_hold(self) -> None:
        pair = Pair()
        hold = pair.hold("t1", 60)
        pair.credit(hold)
        pair.close(hold, post=False)
        report = verify_mirrors(pair.reports())
        assert any("voided in xuhui" in p for p in report.problems)

    def test_credit_with_other_minutes(self) -> None:
        pair = Pair()
        hold = pair.hold("t1", 60)
        pair.credit(hold, minutes=90)
        pair.close(hold)
        report = verify_mirrors(pair.reports())
        assert any("credit differs" in p for p in report.problems)
        assert any("must mirror" in p for p in report.problems)

    def test_double_credit(self) -> None:
        pair = Pair()
        hold = pair.hold("t1", 60)
        pair.credit(hold)
        pair.b.append(
            Kind.TRANSFER_CREDIT,
            "clearing:xuhui",
            "user:helper",
            60,
            id="again",
            meta={"transfer": "t1", "counterpart": "xuhui", "hold": hold.hash.hex()},
        )
        pair.close(hold)
        report = verify_mirrors(pair.reports())
        assert any("credited 2 times" in p for p in report.problems)

    def test_posted_hold_without_credit(self) -> None:
        pair = Pair()
        hold = pair.hold("t1", 60)
        pair.close(hold)
        report = verify_mirrors(pair.reports())
        assert any("posted transfer t1 has no credit" in p for p in report.problems)

    def test_missing_counterpart_chain_is_skipped(self) -> None:
        pair = Pair()
        hold = pair.hold("t1", 60)
        pair.close(hold)
        report = verify_mirrors(pair.reports()[:1])
        assert report.ok and report.net == {}
