"""Tortoise models of the ledger app (label `ledger`).

Every table carries `district` in each unique key so that the schema can later be distributed
by district (Citus) without redesign. Tortoise has no composite primary keys, so each table has
a surrogate `row` key and the real key is a unique constraint that starts with `district`;
except `ledger_entry`, the table every append writes most to, whose primary key is (district,
seq) (see `LedgerEntry`).

The ledger store queries these tables with plain SQL (see `tortoise_store.py`); the models
exist to define the schema and its migrations.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ChainHead(Model):
    """One row per district chain: its size and the hash of its last entry.

    Appends lock this row (`SELECT ... FOR UPDATE` on PostgreSQL), which serialises them per chain.
    """

    row = fields.BigIntField(primary_key=True)
    district = fields.CharField(max_length=64, unique=True)
    size = fields.BigIntField(default=0)
    head = fields.BinaryField()

    class Meta:
        table = "ledger_chain"


# Text columns hold up to `ledger.entries.MAX_TEXT` (256) characters, what an entry may carry.
TEXT = 256


class LedgerEntry(Model):
    """An entry: the exact canonical bytes that were hashed plus columns for queries."""

    # The table's primary key is (district, seq) (migration 0004), its natural key: no
    # surrogate column to fill and index per entry. Tortoise cannot declare a composite key,
    # so the model names `seq` as its primary key; entries are only ever inserted, never
    # fetched, saved or deleted by `pk` through the ORM.
    district = fields.CharField(max_length=64)
    seq = fields.BigIntField(primary_key=True, generated=False)
    entry_id = fields.CharField(max_length=TEXT)
    kind = fields.CharField(max_length=32)
    debit = fields.CharField(max_length=TEXT)
    credit = fields.CharField(max_length=TEXT)
    minutes = fields.BigIntField()
    category = fields.CharField(max_length=TEXT, null=True)
    ref = fields.CharField(max_length=TEXT, null=True)
    actor = fields.CharField(max_length=TEXT)
    policy = fields.BigIntField()
    at_ms = fields.BigIntField()
    # The entry this one closes: the original of a reverse, the hold of a hold_post/hold_void.
    # A partial unique index (migration 0002, only rows that close something) makes the
    # database itself refuse a second reversal or a post after a void.
    settles = fields.CharField(max_length=TEXT, null=True)
    hash = fields.BinaryField()
    body = fields.BinaryField()

    class Meta:
        table = "ledger_entry"
        unique_together = (("district", "entry_id"),)
        # (district, at_ms, category): reports by service category and period (migration 0006).
        indexes = (("district", "debit"), ("district", "credit"), ("district", "at_ms", "category"))


class Balance(Model):
    """Current balance of one account of one chain, written in the same transaction as entries."""

    row = fields.BigIntField(primary_key=True)
    district = fields.CharField(max_length=64)
    account = fields.CharField(max_length=TEXT)
    minutes = fields.BigIntField(default=0)

    class Meta:
        table = "ledger_balance"
        unique_together = (("district", "account"),)


class FailedId(Model):
    """An entry id whose first attempt was refused: every retry gets the same refusal."""

    row = fields.BigIntField(primary_key=True)
    district = fields.CharField(max_length=64)
    entry_id = fields.CharField(max_length=TEXT)
    code = fields.CharField(max_length=64)
    message = fields.TextField()
    # Canonical JSON of the refused proposal's content, to tell a retry from a conflicting reuse.
    content = fields.TextField()
    at_ms = fields.BigIntField()

    class Meta:
        table = "ledger_failed_id"
        unique_together = (("district", "entry_id"),)


class Checkpoint(Model):
    """A signed checkpoint of a chain, stored as the exact bytes that were signed."""

    row = fields.BigIntField(primary_key=True)
    district = fields.CharField(max_length=64)
    size = fields.BigIntField()
    root = fields.BinaryField()
    at_ms = fields.BigIntField()
    body = fields.BinaryField()

    class Meta:
        table = "ledger_checkpoint"
        unique_together = (("district", "size"),)


class MerkleNode(Model):
    """Hash of the complete subtree of 2**level leaves starting at leaf idx * 2**level."""

    row = fields.BigIntField(primary_key=True)
    district = fields.CharField(max_length=64)
    level = fields.IntField()
    idx = fields.BigIntField()
    hash = fields.BinaryField()

    class Meta:
        table = "ledger_merkle_node"
        unique_together = (("district", "level", "idx"),)
