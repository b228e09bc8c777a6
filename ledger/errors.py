"""The ledger's error family: every refusal is one of these, with a stable `code` and a message.

```
LedgerError                      ledger.error
├── NotCanonical                 ledger.not_canonical        bytes/values not canonical JSON
├── InvalidEntry                 ledger.invalid_entry        a field has a bad type or value
│   └── InvalidAccount           ledger.invalid_account      an account name that does not parse
├── ChainBroken                  ledger.chain_broken         seq gap, bad prev link, district
├── RuleViolation                ledger.rule_violation       a double-entry or policy rule refuses
│   ├── InsufficientMinutes      ledger.insufficient_minutes the debit account would go negative
│   ├── MinutesOutOfRange        ledger.minutes_out_of_range minutes <= 0 or above the ceiling
│   ├── AlreadyReversed          ledger.already_reversed     an entry may be reversed once only
│   ├── NotReversible            ledger.not_reversible       this kind of entry has no reversal
│   └── PolicyForbids            ledger.policy_forbids       the district policy in force says no
├── IdempotencyConflict          ledger.idempotency_conflict same id, other content (field)
├── IdempotencyFailed            ledger.idempotency_failed   the first attempt with this id failed
├── UnknownEntry                 ledger.unknown_entry        no entry with that id / seq / hash
├── UnknownDistrict              ledger.unknown_district     no chain for that district
├── TransferError                ledger.transfer_error       the two-phase cross-district protocol
│   ├── UnknownTransfer          ledger.unknown_transfer
│   └── TransferConflict         ledger.transfer_conflict    a step contradicts the transfer's state
├── ProofError                   ledger.invalid_proof        a Merkle proof request or proof is bad
├── BadSignature                 ledger.bad_signature        a signature does not verify
├── InvalidCheckpoint            ledger.invalid_checkpoint   a malformed checkpoint or key history
├── InconsistentCheckpoint       ledger.inconsistent_checkpoint a checkpoint contradicts another
├── KeyStoreError                ledger.key_store            the encrypted key files
│   ├── KeyNotFound              ledger.key_not_found
│   ├── KeyExists                ledger.key_exists
│   └── WrongPassphrase          ledger.wrong_passphrase
├── WitnessRefused               ledger.witness_refused      a witness will not co-sign
└── ExportInvalid                ledger.export_invalid       an export directory is malformed
```

The `code` is stable and meant for the HTTP layer to map to a status; the message is for people.
"""

from __future__ import annotations


class LedgerError(Exception):
    code = "ledger.error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotCanonical(LedgerError):
    code = "ledger.not_canonical"

    def __init__(self, reason: str, field: str | None = None) -> None:
        where = f"{field}: " if field else ""
        super().__init__(f"not canonical: {where}{reason}")
        self.reason = reason
        self.field = field


class InvalidEntry(LedgerError):
    code = "ledger.invalid_entry"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid entry field {field!r}: {reason}")
        self.field = field
        self.reason = reason


class InvalidAccount(InvalidEntry):
    code = "ledger.invalid_account"

    def __init__(self, name: object, reason: str, field: str = "account") -> None:
        super().__init__(field, f"{name!r} {reason}")
        self.name = name


class ChainBroken(LedgerError):
    code = "ledger.chain_broken"

    def __init__(self, reason: str, seq: int | None = None) -> None:
        where = f"at seq {seq}: " if seq is not None else ""
        super().__init__(f"chain broken {where}{reason}")
        self.reason = reason
        self.seq = seq


class RuleViolation(LedgerError):
    code = "ledger.rule_violation"


class InsufficientMinutes(RuleViolation):
    code = "ledger.insufficient_minutes"

    def __init__(self, account: str, available: int, requested: int) -> None:
        super().__init__(
            f"account {account} has {available} minutes available, {requested} requested"
        )
        self.account = account
        self.available = available
        self.requested = requested


class MinutesOutOfRange(RuleViolation):
    code = "ledger.minutes_out_of_range"

    def __init__(self, minutes: int, ceiling: int | None = None) -> None:
        bound = f" (ceiling {ceiling})" if ceiling is not None else ""
        super().__init__(f"{minutes} minutes is out of range{bound}")
        self.minutes = minutes
        self.ceiling = ceiling


class AlreadyReversed(RuleViolation):
    code = "ledger.already_reversed"

    def __init__(self, entry_id: str, reversal_id: str | None = None) -> None:
        by = f" by {reversal_id}" if reversal_id else ""
        super().__init__(f"entry {entry_id} is already reversed{by}")
        self.entry_id = entry_id
        self.reversal_id = reversal_id


class NotReversible(RuleViolation):
    code = "ledger.not_reversible"

    def __init__(self, entry_id: str, kind: str) -> None:
        super().__init__(f"entry {entry_id} of kind {kind} cannot be reversed")
        self.entry_id = entry_id
        self.kind = kind


class PolicyForbids(RuleViolation):
    code = "ledger.policy_forbids"

    def __init__(self, rule: str, version: int, reason: str) -> None:
        super().__init__(f"policy v{version} rule {rule}: {reason}")
        self.rule = rule
        self.version = version
        self.reason = reason


class IdempotencyConflict(LedgerError):
    code = "ledger.idempotency_conflict"

    def __init__(self, field: str, entry_id: str | None = None) -> None:
        which = f"id {entry_id} " if entry_id else "id "
        super().__init__(f"{which}was already used with a different {field}")
        self.field = field
        self.entry_id = entry_id


class IdempotencyFailed(LedgerError):
    code = "ledger.idempotency_failed"

    def __init__(self, entry_id: str, first_error: str) -> None:
        super().__init__(f"id {entry_id} failed on its first attempt: {first_error}")
        self.entry_id = entry_id
        self.first_error = first_error


class UnknownEntry(LedgerError):
    code = "ledger.unknown_entry"

    def __init__(self, key: object) -> None:
        super().__init__(f"no entry {key!r}")
        self.key = key


class UnknownDistrict(LedgerError):
    code = "ledger.unknown_district"

    def __init__(self, district: str) -> None:
        super().__init__(f"no ledger for district {district!r}")
        self.district = district


class TransferError(LedgerError):
    code = "ledger.transfer_error"


class UnknownTransfer(TransferError):
    code = "ledger.unknown_transfer"

    def __init__(self, transfer_id: str) -> None:
        super().__init__(f"no transfer {transfer_id!r}")
        self.transfer_id = transfer_id


class TransferConflict(TransferError):
    code = "ledger.transfer_conflict"

    def __init__(self, transfer_id: str, reason: str) -> None:
        super().__init__(f"transfer {transfer_id}: {reason}")
        self.transfer_id = transfer_id
        self.reason = reason


class ProofError(LedgerError):
    code = "ledger.invalid_proof"


class BadSignature(LedgerError):
    code = "ledger.bad_signature"


class InvalidCheckpoint(LedgerError):
    code = "ledger.invalid_checkpoint"


class InconsistentCheckpoint(LedgerError):
    code = "ledger.inconsistent_checkpoint"


class KeyStoreError(LedgerError):
    code = "ledger.key_store"


class KeyNotFound(KeyStoreError):
    code = "ledger.key_not_found"


class KeyExists(KeyStoreError):
    code = "ledger.key_exists"


class WrongPassphrase(KeyStoreError):
    code = "ledger.wrong_passphrase"


class WitnessRefused(LedgerError):
    code = "ledger.witness_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(f"witness refuses to co-sign: {reason}")
        self.reason = reason


class ExportInvalid(LedgerError):
    code = "ledger.export_invalid"
