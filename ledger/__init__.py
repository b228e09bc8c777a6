"""The time-bank ledger: per-district hash chains of canonical entries with Merkle proofs.

Never imports `market`; only `ledger.storage` touches the ORM.
"""
