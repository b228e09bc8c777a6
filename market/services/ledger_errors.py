"""Ledger refusals as API errors: the mapping the service boundary applies (routes never catch).

A `ledger.errors.LedgerError` becomes the `market.errors` class of its nearest listed ancestor,
keeping the ledger's stable code (`ledger.insufficient_minutes`, ...) and message; a district
policy refusal (`market.policy.PolicyForbids`) becomes 403 `policy.forbids` with the rule and
the policy version in `details`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ledger import errors as lerr
from market import policy as policy_rules
from market.errors import ApiError, Conflict, Forbidden, InvalidInput, NotFound

_STATUS: dict[type[lerr.LedgerError], type[ApiError]] = {
    lerr.InsufficientMinutes: Conflict,
    lerr.MinutesOutOfRange: InvalidInput,
    lerr.AlreadyReversed: Conflict,
    lerr.NotReversible: Conflict,
    lerr.PolicyForbids: Forbidden,
    lerr.IdempotencyConflict: Conflict,
    lerr.IdempotencyFailed: Conflict,
    lerr.UnknownEntry: NotFound,
    lerr.UnknownDistrict: NotFound,
    lerr.TransferError: Conflict,
    lerr.ProofError: InvalidInput,
    lerr.InvalidEntry: InvalidInput,
    lerr.NotCanonical: InvalidInput,
    lerr.BadSignature: InvalidInput,
    lerr.InvalidCheckpoint: InvalidInput,
    lerr.InconsistentCheckpoint: Conflict,
    lerr.WitnessRefused: Conflict,
    lerr.RuleViolation: Conflict,
}


def api_error(error: lerr.LedgerError) -> ApiError:
    """The HTTP error a ledger refusal becomes (the most specific class listed wins)."""
    for cls in type(error).__mro__:
        api = _STATUS.get(cls)  # type: ignore[call-overload]
        if api is not None:
            return api(error.code, error.message)  # type: ignore[no-any-return]
    return Conflict(error.code, error.message)


@asynccontextmanager
async def ledger_errors() -> AsyncIterator[None]:
    """Turn ledger refusals into API errors at the service boundary (routes never catch)."""
    try:
        yield
    except lerr.LedgerError as error:
        raise api_error(error) from error


def policy_refusal(error: policy_rules.PolicyForbids) -> Forbidden:
    return Forbidden(error.code, str(error), {"rule": error.rule, "version": error.version})
