"""Tortoise models of the witnessing app: who co-signed which checkpoint, with what key.

Kept in an app of its own, beside the ledger's tables and apart from the market's schema, so its
migrations never interleave with either. Rows are only ever inserted: a co-signature is a fact
about a signed checkpoint. `district` leads the unique key so the table shards with the ledger.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Cosignature(Model):
    # A witness's Ed25519 signature over a checkpoint's digest (market.services.witnesses).
    row = fields.BigIntField(primary_key=True)
    district = fields.CharField(max_length=64)
    size = fields.BigIntField()
    # "centre:<district code>" for a district centre, "auditor:<user id>" for an auditor.
    witness = fields.CharField(max_length=100)
    key_id = fields.CharField(max_length=32)
    public = fields.BinaryField()
    signature = fields.BinaryField()
    at_ms = fields.BigIntField()

    class Meta:
        table = "ledger_cosignature"
        unique_together = (("district", "size", "witness"),)


class WitnessKey(Model):
    # The one Ed25519 public key a witness co-signs with, pinned at registration: a later
    # co-signature only counts if it verifies under this key, so nobody can present a fresh
    # key per checkpoint. Insert-only (database triggers) and unique per witness.
    row = fields.BigIntField(primary_key=True)
    # "auditor:<user id>"; centres' keys live in the key store, not here.
    witness = fields.CharField(max_length=100, unique=True)
    key_id = fields.CharField(max_length=32)
    public = fields.BinaryField()
    at_ms = fields.BigIntField()

    class Meta:
        table = "ledger_witness_key"
