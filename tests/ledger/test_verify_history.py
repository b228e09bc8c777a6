"""A builder of valid ledger histories, shared by the verification, export and receipt tests.

It keeps its own balances and appends only entries the rules allow, so any history it builds
must verify; the tests at the bottom check the builder itself.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entries import (
    ISSUANCE,
    POOL,
    ZERO_HASH,
    Entry,
    Kind,
    build_entry,
    clearing_account,
)
from ledger.keys import Signer
from ledger.merkle import MerkleIndex
from ledger.verify import verify_chain

AT = 1_700_000_000_000


@dataclass
class ChainBuilder:
    district: str = "xuhui"
    entries: list[Entry] = field(default_factory=list)
    balances: dict[str, int] = field(default_factory=dict)
    reversed: set[str] = field(default_factory=set)
    open_holds: list[Entry] = field(default_factory=list)

    @property
    def bodies(self) -> list[bytes]:
        return [e.body for e in self.entries]

    @property
    def hashes(self) -> list[bytes]:
        return [e.hash for e in self.entries]

    def append(self, kind: Kind, debit: str, credit: str, minutes: int, **extra: object) -> Entry:
        seq = len(self.entries)
        entry = build_entry(
            district=self.district,
            seq=seq,
            prev=self.entries[-1].hash if self.entries else ZERO_HASH,
            id=str(extra.pop("id", f"{self.district}-{seq}-{kind}")),
            kind=kind,
            debit=debit,
            credit=credit,
            minutes=minutes,
            category=extra.pop("category", "meal"),  # type: ignore[arg-type]
            ref=extra.pop("ref", None),  # type: ignore[arg-type]
            actor="centre:" + self.district,
            policy=1,
            at_ms=AT + seq * 1000,
            meta=extra.pop("meta", None),  # type: ignore[arg-type]
        )
        assert not extra, extra
        self.entries.append(entry)
        if kind != Kind.HOLD_POST:
            self.balances[debit] = self.balances.get(debit, 0) - minutes
            self.balances[credit] = self.balances.get(credit, 0) + minutes
        return entry

    def funded_users(self, at_least: int) -> list[str]:
        return sorted(
            a for a, v in self.balances.items() if a.startswith("user:") and v >= at_least
        )

    def step(self, rnd: random.Random) -> None:
        """Append one random entry the rules allow (a deposit when nothing else fits)."""
        users = [f"user:u{i}" for i in range(6)]
        choice = rnd.randrange(10)
        rich = self.funded_users(10)
        if choice == 1 and rich:
            self.append(Kind.REDEEM, rnd.choice(rich), ISSUANCE, rnd.randint(1, 10))
        elif choice == 2 and rich:
            giver = rnd.choice(rich)
            taker = rnd.choice([u for u in users if u != giver])
            self.append(Kind.GIFT, giver, taker, rnd.randint(1, 10))
        elif choice == 3 and rich:
            self.append(Kind.DONATE, rnd.choice(rich), POOL, rnd.randint(1, 10))
        elif choice == 4 and self.balances.get(POOL, 0) >= 5:
            self.append(Kind.DEPOSIT, POOL, rnd.choice(users), 5)
        elif choice == 5 and self._reverse(rnd):
            return
        elif choice == 6 and rich:
            user = rnd.choice(rich)
            transfer = f"t{len(self.entries)}"
            hold = self.append(
                Kind.HOLD_PENDING,
                user,
                clearing_account("minhang"),
                rnd.randint(1, 10),
                meta={"transfer": transfer, "counterpart": "minhang"},
            )
            self.open_holds.append(hold)
        elif choice == 7 and self.open_holds:
            hold = self.open_holds.pop(rnd.randrange(len(self.open_holds)))
            post = rnd.random() < 0.5
            self.append(
                Kind.HOLD_POST if post else Kind.HOLD_VOID,
                hold.debit if post else hold.credit,
                hold.credit if post else hold.debit,
                hold.minutes,
                ref=hold.id,
                meta={"transfer": hold.transfer_id},
            )
        elif choice == 8:
            self.append(
                Kind.TRANSFER_CREDIT,
                clearing_account("minhang"),
                rnd.choice(users),
                rnd.randint(1, 10),
                meta={
                    "transfer": f"m{len(self.entries)}",
                    "counterpart": "minhang",
                    "hold": hashlib.sha256(str(len(self.entries)).encode()).hexdigest(),
                },
            )
        elif choice == 9 and rich:
            self.append(Kind.EXPIRE, rnd.choice(rich), "expired", 1, category=None)
        else:
            self.append(Kind.DEPOSIT, ISSUANCE, rnd.choice(users), rnd.choice([15, 30, 60]))

    def _reverse(self, rnd: random.Random) -> bool:
        reversible = (Kind.DEPOSIT, Kind.REDEEM, Kind.GIFT, Kind.DONATE)
        candidates = [
            e
            for e in self.entries
            if e.kind in reversible
            and e.id not in self.reversed
            and (
                (not e.credit.startswith("user:") and e.credit != POOL)
                or self.balances.get(e.credit, 0) >= e.minutes
            )
        ]
        if not candidates:
            return False
        target = rnd.choice(candidates)
        self.reversed.add(target.id)
        self.append(Kind.REVERSE, target.credit, target.debit, target.minutes, ref=target.id)
        return True

    def checkpoint(self, signer: Signer, size: int | None = None) -> Checkpoint:
        size = len(self.entries) if size is None else size
        return sign_checkpoint(
            district=self.district,
            size=size,
            root=MerkleIndex.from_leaves(self.hashes[:size]).root(),
            at_ms=AT + size,
            signer=signer,
        )


def random_history(seed: int, size: int, district: str = "xuhui") -> ChainBuilder:
    rnd = random.Random(seed)
    builder = ChainBuilder(district)
    while len(builder.entries) < size:
        builder.step(rnd)
    return builder


class TestBuilder:
    def test_uses_every_kind_of_entry(self) -> None:
        kinds = {e.kind for e in random_history(7, 400).entries}
        assert kinds == set(Kind) - {Kind.KEY_ROTATION}

    def test_history_verifies_and_balances_match(self) -> None:
        builder = random_history(3, 300)
        report = verify_chain(builder.bodies, district="xuhui")
        assert report.ok, report.reason
        assert report.balances == {k: v for k, v in sorted(builder.balances.items())}

    def test_same_seed_same_history(self) -> None:
        assert random_history(5, 50).bodies == random_history(5, 50).bodies
