"""Witness co-signatures of ledger checkpoints (Tortoise app label `witnessing`)."""
