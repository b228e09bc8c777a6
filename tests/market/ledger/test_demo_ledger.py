"""The demo's ledger history: every kind of entry, verifiable, witnessed, mirrored, idempotent."""

from __future__ import annotations

from ledger.checkpoint import key_history
from ledger.entries import Kind
from ledger.transfer import settlement_report
from ledger.verify import verify_chain, verify_mirrors
from market import demo
from market.demo_ledger import build_demo_ledger
from market.services import checkpoints
from market.services.runtime import Runtime
from tests.market.ledger.conftest import stop_background


async def test_demo_ledger_history(runtime: Runtime) -> None:
    await stop_background(runtime.ledger)
    await demo.build_demo_city(runtime, seed=7)
    summary = await build_demo_ledger(runtime, seed=7)
    gateway = runtime.ledger
    chains = await gateway.local_chains()
    assert len(chains) == 3
    assert summary.deposits > 100 and summary.gifts > 0 and summary.donations > 0
    assert summary.redemptions > 0 and summary.reversals == 1
    assert summary.transfers >= 3 and summary.checkpoints == 3 * 3
    kinds: set[str] = set()
    reports = []
    for chain in chains:
        entries = await gateway.store.entries(chain)
        kinds |= {str(e.kind) for e in entries}
        cps = await checkpoints.all_checkpoints(chain)
        report = verify_chain(
            [e.body for e in entries],
            district=chain,
            checkpoints=cps,
            public_keys=key_history(gateway.keys, chain),
            stored_balances=await gateway.store.balances(chain),
        )
        assert report.ok, report.reason
        assert report.checkpoints_verified == 3
        reports.append(report)
        latest = await checkpoints.latest_checkpoint(chain)
        assert latest is not None and latest.size == len(entries)
        assert (await checkpoints.witnessed(gateway, latest)).witnessed
    assert verify_mirrors(reports).ok
    expected = {Kind.DEPOSIT, Kind.REDEEM, Kind.GIFT, Kind.DONATE, Kind.REVERSE}
    expected |= {Kind.HOLD_PENDING, Kind.HOLD_POST, Kind.TRANSFER_CREDIT}
    assert {str(k) for k in expected} <= kinds
    report = await settlement_report(gateway.store)
    assert report.mirrored and report.open_holds == 0

    sizes = [(await gateway.store.head(c)).size for c in chains]
    again = await build_demo_ledger(runtime, seed=7)
    assert [(await gateway.store.head(c)).size for c in chains] == sizes
    assert again.entries == sum(sizes) and again.deposits == 0
