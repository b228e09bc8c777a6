"""Double-entry rules: may this proposed entry be appended to its chain now?

Pure: the caller (the append service) looks up what the rules need under the chain lock and
passes it in. Balances grow when an account is credited and shrink when it is debited, so the
balances of one chain always sum to zero.

Account names: `user:<id>`, `issuance`, `pool`, `clearing:<district>`, `expired`.
*Holder* accounts (`user:*` and `pool`) never go below zero; `issuance`, `clearing:*` and
`expired` are counter accounts and may. A pending hold has already moved its minutes out of the
user account, so "never negative" counts pending holds.

The rule table (`D` is the chain's own district, `X`, `Y` users, `B` another district):

| kind            | debit                     | credit               | ref                 | moves |
|-----------------|---------------------------|----------------------|---------------------|-------|
| deposit         | issuance, pool or user:X  | user:Y               | optional (booking)  | yes   |
| redeem          | user:X                    | issuance or user:Y   | optional (booking)  | yes   |
| gift            | user:X                    | user:Y               | optional            | yes   |
| donate          | user:X                    | pool                 | optional            | yes   |
| expire          | user:X                    | expired              | optional            | yes   |
| reverse         | credit of the original    | debit of the original| original's id       | yes   |
| hold_pending    | user:X                    | clearing:B (B != D)  | optional            | yes   |
| hold_post       | user:X of the hold        | clearing:B of hold   | hold's id           | no    |
| hold_void       | clearing:B of the hold    | user:X of the hold   | hold's id           | yes   |
| transfer_credit | clearing:B (B != D)       | user:Y               | optional            | yes   |

Always: debit != credit; 0 < minutes < `Limits.max_minutes`; a holder account cannot be
debited below zero. `reverse` takes the original's minutes, may only correct a deposit, redeem,
gift, donate or expire, and each entry can be reversed once. `hold_post` and `hold_void` take
the hold's minutes and close a `hold_pending` that is still open; a hold is closed once.
The four transfer kinds carry `meta["transfer"]` (the transfer id); `hold_pending` and
`transfer_credit` also carry `meta["counterpart"]`, the district of their clearing account, and
`transfer_credit` carries `meta["hold"]`, the hex hash of the home chain's hold it answers
(the conventions of `ledger.entries`). `key_rotation` is not an accounting entry and is refused.

Caps per account, ages and the like are district policy and belong to the market; the one
cap that must be checked under the chain lock, a holder's maximum balance, comes in through the
optional `Limits.max_balance` hook (refused with `PolicyForbids("max_balance", policy, ...)`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.canonical import MAX_SAFE_INTEGER
from ledger.entries import (
    CLEARING_PREFIX,
    KIND_VALUES,
    META_COUNTERPART,
    META_HOLD,
    META_TRANSFER,
    POOL,
    USER_PREFIX,
    AccountType,
    Entry,
    Kind,
    account_type,
    check_entry_id,
    check_text,
    moves_balance,
)
from ledger.errors import (
    AlreadyReversed,
    InsufficientMinutes,
    InvalidAccount,
    InvalidEntry,
    MinutesOutOfRange,
    NotReversible,
    PolicyForbids,
    TransferConflict,
    UnknownEntry,
)

_KIND_BY_VALUE: dict[str, Kind] = {kind.value: kind for kind in Kind}
TRANSFER_KINDS = frozenset(
    {Kind.HOLD_PENDING, Kind.HOLD_POST, Kind.HOLD_VOID, Kind.TRANSFER_CREDIT}
)
REVERSIBLE = frozenset({Kind.DEPOSIT, Kind.REDEEM, Kind.GIFT, Kind.DONATE, Kind.EXPIRE})
# Kinds whose `ref` must name an earlier entry of the same chain, which they close.
CLOSING = frozenset({Kind.REVERSE, Kind.HOLD_POST, Kind.HOLD_VOID})

# Fields compared when an id is reused: a retry of the same command may carry a later clock
# reading or a newer policy version, so `at_ms` and `policy` do not make it a different entry.
CONTENT_FIELDS = ("kind", "debit", "credit", "minutes", "category", "ref", "actor", "meta")


# (district, account) -> the most minutes that account may hold, or None for no cap.
BalanceCap = Callable[[str, str], int | None]


@dataclass(frozen=True)
class Limits:
    """Configurable bounds of the rules; `max_minutes` is exclusive.

    `max_balance` is the hook for a district's cap on what a holder account may hold: the cap
    itself is market policy, but it is checked here, under the chain lock, so two concurrent
    deposits cannot both slip under it.
    """

    max_minutes: int = 100 * 60
    max_balance: BalanceCap | None = None


@dataclass(frozen=True)
class Proposal:
    """An entry as a client asks for it; the service assigns `seq` and `prev`."""

    district: str
    id: str
    kind: Kind
    debit: str
    credit: str
    minutes: int
    actor: str
    policy: int
    at_ms: int
    category: str | None = None
    ref: str | None = None
    meta: Mapping[str, Any] | None = field(default=None)

    def content(self) -> dict[str, Any]:
        return {name: _plain(getattr(self, name)) for name in CONTENT_FIELDS}


def entry_content(entry: Entry) -> dict[str, Any]:
    return {name: _plain(getattr(entry, name)) for name in CONTENT_FIELDS}


def differing_field(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """The first content field (in `CONTENT_FIELDS` order) whose values differ, or None."""
    for name in CONTENT_FIELDS:
        if a.get(name) != b.get(name):
            return name
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, Kind):
        return str(value)
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda item: str(item[0]))
        return {str(k): _plain(v) for k, v in items} or None
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def is_user(account: str) -> bool:
    return account.startswith(USER_PREFIX) and len(account) > len(USER_PREFIX)


def is_holder(account: str) -> bool:
    """Accounts that hold someone's minutes and so may never go below zero."""
    return is_user(account) or account == POOL


def clearing_district(account: str) -> str | None:
    if account.startswith(CLEARING_PREFIX) and len(account) > len(CLEARING_PREFIX):
        return account[len(CLEARING_PREFIX) :]
    return None


def clearing(district: str) -> str:
    return CLEARING_PREFIX + district


def moves(kind: Kind) -> bool:
    """Whether an entry of this kind changes balances (a hold_post only records the post)."""
    return moves_balance(kind)


def deltas(kind: Kind, debit: str, credit: str, minutes: int) -> tuple[tuple[str, int], ...]:
    if not moves(kind):
        return ()
    return ((debit, -minutes), (credit, minutes))


def check_shape(p: Proposal, *, limits: Limits) -> Kind:
    """The checks that need nothing but the proposal itself: every field an entry is built
    from, so the append path builds the entry without checking anything again
    (`entries.new_entry`). Accounts are classified through a cache (`entries.account_type`)."""
    kind = _kind_of(p.kind)
    minutes = p.minutes
    if type(minutes) is not int:
        raise InvalidEntry("minutes", "must be an integer")
    if minutes <= 0 or minutes >= limits.max_minutes or minutes > MAX_SAFE_INTEGER:
        raise MinutesOutOfRange(minutes, limits.max_minutes)
    check_entry_id(p.id)
    debit_type = _account_type(p.debit, "debit")
    credit_type = _account_type(p.credit, "credit")
    if p.debit == p.credit:
        raise InvalidEntry("credit", f"debit and credit are both {p.debit}")
    _need_shape(p, kind, debit_type, credit_type)
    check_text("actor", p.actor)
    if p.category is not None:
        check_text("category", p.category)
    if p.ref is not None:
        check_text("ref", p.ref)
    _check_number("policy", p.policy)
    _check_number("at_ms", p.at_ms)
    meta = p.meta
    if meta is not None:
        if not isinstance(meta, Mapping):
            raise InvalidEntry("meta", f"must be an object, got {type(meta).__name__}")
        if not all(type(key) is str for key in meta):
            raise InvalidEntry("meta", "keys must be strings")
    if kind in CLOSING:
        _need(p, bool(p.ref), "name the entry it closes in ref", "ref")
    if kind in TRANSFER_KINDS:
        _need(p, isinstance((meta or {}).get(META_TRANSFER), str), 'carry meta["transfer"]', "meta")
    if kind in (Kind.HOLD_PENDING, Kind.TRANSFER_CREDIT):
        account = p.credit if kind == Kind.HOLD_PENDING else p.debit
        counterpart = (meta or {}).get(META_COUNTERPART)
        what = 'name in meta["counterpart"] the district of its clearing account'
        _need(p, counterpart == clearing_district(account), what, "meta")
    if kind == Kind.TRANSFER_CREDIT:
        hold = (meta or {}).get(META_HOLD)
        _need(p, _is_hex_hash(hold), 'carry meta["hold"], the hex hash of the home hold', "meta")
    return kind


_U, _C, _I, _P, _E = (
    AccountType.USER,
    AccountType.CLEARING,
    AccountType.ISSUANCE,
    AccountType.POOL,
    AccountType.EXPIRED,
)


def _need_shape(p: Proposal, kind: Kind, debit: AccountType, credit: AccountType) -> None:
    """Which accounts each kind may debit and credit (the table at the top of this module)."""
    if kind == Kind.DEPOSIT:
        _need(p, debit in (_I, _P, _U), "debit issuance, pool or a user")
        _need(p, credit is _U, "credit a user")
    elif kind == Kind.REDEEM:
        _need(p, debit is _U, "debit a user")
        _need(p, credit in (_I, _U), "credit issuance or a user")
    elif kind == Kind.GIFT:
        _need(p, debit is _U and credit is _U, "move minutes from a user to a user")
    elif kind == Kind.DONATE:
        _need(p, debit is _U and credit is _P, "move minutes from a user to the pool")
    elif kind == Kind.EXPIRE:
        _need(p, debit is _U and credit is _E, "move minutes from a user to expired")
    elif kind in (Kind.HOLD_PENDING, Kind.HOLD_POST):
        _need(p, debit is _U, "debit a user")
        _need_foreign_clearing(p, p.credit)
    elif kind in (Kind.HOLD_VOID, Kind.TRANSFER_CREDIT):
        _need_foreign_clearing(p, p.debit)
        _need(p, credit is _U, "credit a user")
    elif kind != Kind.REVERSE:  # a reverse takes the original's accounts, swapped
        raise InvalidEntry("kind", f"{kind!r} cannot be appended as an accounting entry")


def _kind_of(value: object) -> Kind:
    kind = _KIND_BY_VALUE.get(value) if isinstance(value, str) else None
    if kind is None:
        raise InvalidEntry("kind", f"{value!r} is not one of {sorted(KIND_VALUES)}")
    return kind


def _account_type(name: object, field: str) -> AccountType:
    if type(name) is not str:
        raise InvalidAccount(name, "is not a string", field)
    try:
        return account_type(name)
    except InvalidAccount as error:
        raise InvalidAccount(name, error.reason.removeprefix(f"{name!r} "), field) from None


def _check_number(name: str, value: object) -> None:
    if type(value) is not int:
        raise InvalidEntry(name, f"must be an integer, got {type(value).__name__}")
    if not 0 <= value <= MAX_SAFE_INTEGER:
        raise InvalidEntry(name, f"must be between 0 and 2**53 - 1, got {value}")


def check(
    p: Proposal,
    *,
    balances: Mapping[str, int],
    target: Entry | None,
    target_closed_by: str | None,
    limits: Limits,
) -> None:
    """Refuse `p` with a `LedgerError` unless it may be appended now.

    `balances` holds the current balances of p's debit and credit accounts (missing = 0),
    `target` the entry named by `ref` for closing kinds, `target_closed_by` the id of the entry
    that already closed it, if any.
    """
    kind = check_shape(p, limits=limits)
    check_state(
        p,
        kind,
        debit_balance=balances.get(p.debit, 0),
        credit_balance=balances.get(p.credit, 0),
        target=target,
        target_closed_by=target_closed_by,
        limits=limits,
    )


def check_state(
    p: Proposal,
    kind: Kind,
    *,
    debit_balance: int,
    credit_balance: int,
    target: Entry | None,
    target_closed_by: str | None,
    limits: Limits,
) -> None:
    """The rules that depend on the chain, for a proposal that passed `check_shape` (whose
    result is `kind`): the entry it closes, and the balances of its two accounts."""
    if kind in CLOSING:
        _check_closing(p, target, target_closed_by)
    if kind == Kind.HOLD_POST:
        return  # moves nothing
    if debit_balance < p.minutes and is_holder(p.debit):
        raise InsufficientMinutes(p.debit, debit_balance, p.minutes)
    if limits.max_balance is not None and is_holder(p.credit):
        cap = limits.max_balance(p.district, p.credit)
        after = credit_balance + p.minutes
        if cap is not None and after > cap:
            reason = f"{p.credit} would hold {after} minutes, above its cap of {cap}"
            raise PolicyForbids("max_balance", p.policy, reason)


def _check_closing(p: Proposal, target: Entry | None, closed_by: str | None) -> None:
    if target is None or target.district != p.district:
        raise UnknownEntry(f"{p.district}/{p.ref}")
    if p.kind == Kind.REVERSE:
        if target.kind not in REVERSIBLE:
            raise NotReversible(target.id, str(target.kind))
        if closed_by is not None:
            raise AlreadyReversed(target.id, closed_by)
        expected = (target.credit, target.debit, target.minutes)
        what = "swap the original's debit and credit and keep its minutes"
        _need(p, (p.debit, p.credit, p.minutes) == expected, what)
        return
    if target.kind != Kind.HOLD_PENDING:
        raise InvalidEntry("ref", f"{target.id} is a {target.kind}, not a pending hold")
    if closed_by is not None:
        raise TransferConflict(
            target.ref or target.id, f"hold {target.id} already closed by {closed_by}"
        )
    if p.kind == Kind.HOLD_POST:
        expected = (target.debit, target.credit, target.minutes)
    else:
        expected = (target.credit, target.debit, target.minutes)
    _need(p, (p.debit, p.credit, p.minutes) == expected, "match the hold's accounts and minutes")


def _need(p: Proposal, ok: bool, what: str, field: str = "kind") -> None:
    if not ok:
        raise InvalidEntry(field, f"a {p.kind} entry must {what}")


def _need_foreign_clearing(p: Proposal, account: str) -> None:
    other = clearing_district(account)
    _need(
        p, other is not None and other != p.district, "use the clearing account of another district"
    )


def _is_hex_hash(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 64:
        return False
    return all(c in "0123456789abcdef" for c in value)
