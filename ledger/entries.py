"""Ledger entries: typed fields, their canonical bytes and their hash.

An entry moves `minutes` from the `debit` account to the `credit` account of one district's
chain: the debit account's balance goes down, the credit account's goes up, so the balances of
a chain always sum to zero. Canonical body (keys sorted by `canonical.encode`):

    {"actor":..,"at":<unix ms>,"category":..|null,"credit":..,"debit":..,"district":..,
     "id":..,"kind":..,"meta":{..},"minutes":<int>,"policy":<int>,"prev":<64 hex>,
     "ref":..|null,"seq":<int>,"v":1}

The entry hash is SHA-256(0x00 || VERSION_TAG || body): exactly the RFC 9162 leaf hash of the
leaf data `VERSION_TAG || body`, so the chain links and the Merkle tree share one hash per entry.

Conventions shared by the append path and the verifier (`ledger.verify` checks them):
- `reverse`: `ref` is the id of the corrected entry; debit/credit swapped, same minutes.
- `hold_pending` (home chain A): user -> `clearing:B`, `meta["transfer"]` = transfer id,
  `meta["counterpart"]` = B.
- `transfer_credit` (serving chain B): `clearing:A` -> payee, `meta["transfer"]`,
  `meta["counterpart"]` = A and `meta["hold"]` = hex hash of the hold entry in chain A.
- `hold_post` / `hold_void` (home chain A): `ref` = id of the hold entry, `meta["transfer"]`.
  A void moves the minutes back (`clearing:B` -> user). A post only finalises: it repeats the
  hold's debit, credit and minutes for the record but moves nothing (see `moves_balance`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from functools import lru_cache
from hashlib import sha256
from itertools import pairwise
from json.encoder import encode_basestring as encode_json_string
from types import MappingProxyType
from typing import Any

from ledger.canonical import MAX_SAFE_INTEGER, decode, encode
from ledger.errors import InvalidAccount, InvalidEntry, NotCanonical

ENTRY_VERSION = 1
VERSION_TAG = b"eldercare.ledger.v1\n"
LEAF_PREFIX = b"\x00"
HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)

ISSUANCE = "issuance"
POOL = "pool"
EXPIRED = "expired"
USER_PREFIX = "user:"
CLEARING_PREFIX = "clearing:"

META_TRANSFER = "transfer"
META_COUNTERPART = "counterpart"
META_HOLD = "hold"

BODY_KEYS = frozenset(
    {
        "v",
        "district",
        "seq",
        "prev",
        "id",
        "kind",
        "debit",
        "credit",
        "minutes",
        "category",
        "ref",
        "actor",
        "policy",
        "at",
        "meta",
    }
)

# Identifiers stay ASCII and colon-free so that account names parse without ambiguity.
DISTRICT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
USER_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}"
ACCOUNT_PATTERN = (
    rf"(?:user:{USER_ID_PATTERN}|clearing:{DISTRICT_PATTERN}|{ISSUANCE}|{POOL}|{EXPIRED})"
)
_DISTRICT_RE = re.compile(DISTRICT_PATTERN)
_USER_ID_RE = re.compile(USER_ID_PATTERN)
_ACCOUNT_RE = re.compile(ACCOUNT_PATTERN)
MAX_TEXT = 256
# Text that a database text column cannot hold (NUL), that UTF-8 cannot encode (lone
# surrogates), or that has no business in an id, actor, category or ref (control characters).
_UNSTORABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class Kind(StrEnum):
    DEPOSIT = "deposit"
    REDEEM = "redeem"
    GIFT = "gift"
    DONATE = "donate"
    REVERSE = "reverse"
    HOLD_PENDING = "hold_pending"
    HOLD_POST = "hold_post"
    HOLD_VOID = "hold_void"
    TRANSFER_CREDIT = "transfer_credit"
    EXPIRE = "expire"
    KEY_ROTATION = "key_rotation"


KIND_VALUES = frozenset(kind.value for kind in Kind)
_KIND_BY_VALUE: dict[str, Kind] = {kind.value: kind for kind in Kind}


def moves_balance(kind: str) -> bool:
    """Whether replaying this kind moves minutes; a hold_post only finalises its hold."""
    return kind != Kind.HOLD_POST


class AccountType(StrEnum):
    USER = "user"
    CLEARING = "clearing"
    ISSUANCE = ISSUANCE
    POOL = POOL
    EXPIRED = EXPIRED


@dataclass(frozen=True, slots=True)
class Account:
    type: AccountType
    owner: str | None  # user id or counterpart district; None for the district's own accounts

    @property
    def name(self) -> str:
        return f"{self.type.value}:{self.owner}" if self.owner is not None else self.type.value


def user_account(user_id: str) -> str:
    if not isinstance(user_id, str) or not _USER_ID_RE.fullmatch(user_id):
        raise InvalidAccount(user_id, f"is not a user id ({USER_ID_PATTERN})", "user_id")
    return USER_PREFIX + user_id


def clearing_account(district: str) -> str:
    check_district(district)
    return CLEARING_PREFIX + district


def check_district(district: object, field_name: str = "district") -> str:
    if not isinstance(district, str) or not _DISTRICT_RE.fullmatch(district):
        raise InvalidEntry(field_name, f"{district!r} is not a district id ({DISTRICT_PATTERN})")
    return district


def parse_account(name: object) -> Account:
    if not isinstance(name, str):
        raise InvalidAccount(name, "is not a string")
    if name in (ISSUANCE, POOL, EXPIRED):
        return Account(AccountType(name), None)
    if name.startswith(USER_PREFIX):
        owner = name[len(USER_PREFIX) :]
        if _USER_ID_RE.fullmatch(owner):
            return Account(AccountType.USER, owner)
        raise InvalidAccount(name, f"has a bad user id (expected {USER_ID_PATTERN})")
    if name.startswith(CLEARING_PREFIX):
        owner = name[len(CLEARING_PREFIX) :]
        if _DISTRICT_RE.fullmatch(owner):
            return Account(AccountType.CLEARING, owner)
        raise InvalidAccount(name, f"has a bad district id (expected {DISTRICT_PATTERN})")
    raise InvalidAccount(name, "is not user:<id>, clearing:<district>, issuance, pool or expired")


@lru_cache(maxsize=1 << 16)
def account_type(name: str) -> AccountType:
    """The type of a valid account name, or `InvalidAccount`; cached, because the append path
    classifies the same few thousand accounts over and over (exceptions are not cached)."""
    return parse_account(name).type


def is_user_account(name: str) -> bool:
    return name.startswith(USER_PREFIX)


def entry_hash(body: bytes) -> bytes:
    """SHA-256(0x00 || VERSION_TAG || body), the RFC 9162 leaf hash of VERSION_TAG || body."""
    return hashlib.sha256(LEAF_PREFIX + VERSION_TAG + body).digest()


@dataclass(frozen=True, slots=True)
class Entry:
    district: str
    seq: int
    prev: bytes
    id: str
    kind: Kind
    debit: str
    credit: str
    minutes: int
    category: str | None
    ref: str | None
    actor: str
    policy: int
    at_ms: int
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    body: bytes = b""
    hash: bytes = b""

    @property
    def transfer_id(self) -> str | None:
        value = self.meta.get(META_TRANSFER)
        return value if isinstance(value, str) else None

    def to_json(self) -> dict[str, Any]:
        """The body as a JSON object (prev as hex), i.e. `canonical.decode(self.body)`."""
        return decode(self.body)


def _check_int(name: str, value: object, minimum: int) -> int:
    if type(value) is not int:
        raise InvalidEntry(name, f"must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise InvalidEntry(name, f"must be >= {minimum}, got {value}")
    if value > MAX_SAFE_INTEGER:
        raise InvalidEntry(name, "is above 2**53 - 1")
    return value


def check_text(name: str, value: object, *, optional: bool = False) -> str | None:
    """A text field of an entry (id, actor, category, ref): 1 to `MAX_TEXT` characters, none of
    them a control character or a lone surrogate, so that every store can hold it as it is."""
    # isprintable() is one fast pass; only text it doubts (any control, format or separator
    # character) needs the search for what a store really cannot hold.
    if type(value) is str and 0 < len(value) <= MAX_TEXT and value.isprintable():
        return value
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidEntry(name, f"must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidEntry(name, "must not be empty")
    if len(value) > MAX_TEXT:
        raise InvalidEntry(name, f"is {len(value)} characters long, at most {MAX_TEXT} allowed")
    bad = _UNSTORABLE.search(value)
    if bad is not None:
        raise InvalidEntry(
            name, f"contains {bad.group()!r} at {bad.start()}: no control characters or lone "
            "surrogates allowed",
        )  # fmt: skip
    return value


def check_entry_id(value: object) -> str:
    """An entry id as the ledger accepts it; refused ids are never recorded as failed, since
    they could not be stored (a retry is refused by this same check)."""
    if type(value) is str and 0 < len(value) <= MAX_TEXT and value.isprintable():
        return value
    checked = check_text("id", value)
    assert checked is not None
    return checked


def _check_text(name: str, value: object, *, optional: bool = False) -> str | None:
    """What a parsed entry's text field must be (stored entries may predate `check_text`)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidEntry(name, f"must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidEntry(name, "must not be empty")
    if len(value) > MAX_TEXT:
        raise InvalidEntry(name, f"longer than {MAX_TEXT} characters")
    return value


def build_entry(
    *,
    district: str,
    seq: int,
    prev: bytes,
    id: str,
    kind: Kind | str,
    debit: str,
    credit: str,
    minutes: int,
    category: str | None = None,
    ref: str | None = None,
    actor: str,
    policy: int,
    at_ms: int,
    meta: Mapping[str, Any] | None = None,
    _body: bytes | None = None,
) -> Entry:
    """Validate field types and shapes and compute body and hash; business rules live elsewhere.

    `_body` is for `entry_from_bytes` only: bytes already proven to be the canonical encoding
    of exactly these fields, so they need not be encoded again.
    """
    check_district(district)
    _check_int("seq", seq, 0)
    if not isinstance(prev, bytes) or len(prev) != HASH_SIZE:
        raise InvalidEntry("prev", f"must be {HASH_SIZE} bytes")
    if seq == 0 and prev != ZERO_HASH:
        raise InvalidEntry("prev", "the first entry of a chain must link to 32 zero bytes")
    _check_text("id", id)
    if kind not in KIND_VALUES:
        raise InvalidEntry("kind", f"{kind!r} is not one of {sorted(KIND_VALUES)}")
    for account in (debit, credit):
        if type(account) is not str or not _ACCOUNT_RE.fullmatch(account):
            parse_account(account)  # raises, naming what is wrong
    if debit == credit:
        raise InvalidEntry("credit", "debit and credit must be different accounts")
    _check_int("minutes", minutes, 1)
    _check_text("category", category, optional=True)
    _check_text("ref", ref, optional=True)
    _check_text("actor", actor)
    _check_int("policy", policy, 0)
    _check_int("at_ms", at_ms, 0)
    if meta is None:
        meta = {}
    if type(meta) is not dict and not isinstance(meta, Mapping):
        raise InvalidEntry("meta", f"must be an object, got {type(meta).__name__}")
    frozen_meta = MappingProxyType(dict(meta))
    body = _body or _body_bytes(
        district,
        seq,
        prev,
        id,
        str(kind),
        debit,
        credit,
        minutes,
        category,
        ref,
        actor,
        policy,
        at_ms,
        frozen_meta,
    )
    return Entry(
        district=district,
        seq=seq,
        prev=prev,
        id=id,
        kind=_KIND_BY_VALUE[kind],
        debit=debit,
        credit=credit,
        minutes=minutes,
        category=category,
        ref=ref,
        actor=actor,
        policy=policy,
        at_ms=at_ms,
        meta=frozen_meta,
        body=body,
        hash=entry_hash(body),
    )


_EMPTY_META: Mapping[str, Any] = MappingProxyType({})
_LEAF_DATA = LEAF_PREFIX + VERSION_TAG
_new_object = object.__new__
# The slot setters of the frozen Entry: building one field by field through them costs about
# half of the dataclass __init__, which the append path would otherwise pay per entry.
(
    _set_district, _set_seq, _set_prev, _set_id, _set_kind, _set_debit, _set_credit,
    _set_minutes, _set_category, _set_ref, _set_actor, _set_policy, _set_at_ms, _set_meta,
    _set_body, _set_hash,
) = (Entry.__dict__[f.name].__set__ for f in fields(Entry))  # fmt: skip


def new_entry(
    district: str,
    seq: int,
    prev: bytes,
    id: str,
    kind: Kind,
    debit: str,
    credit: str,
    minutes: int,
    category: str | None,
    ref: str | None,
    actor: str,
    policy: int,
    at_ms: int,
    meta: Mapping[str, Any] | None,
) -> Entry:
    """An entry from fields that are already checked: `rules.check_shape` checked the
    proposal's, and seq and prev come from the locked chain head. Nothing is checked again but
    what only the canonical writer can see (NFC, lone surrogates: `NotCanonical`); the result
    equals `build_entry` of the same fields."""
    frozen = MappingProxyType(dict(meta)) if meta else _EMPTY_META
    body = _body_bytes(
        district, seq, prev, id, kind.value, debit, credit, minutes, category, ref, actor,
        policy, at_ms, frozen,
    )  # fmt: skip
    entry = _new_object(Entry)
    _set_district(entry, district)
    _set_seq(entry, seq)
    _set_prev(entry, prev)
    _set_id(entry, id)
    _set_kind(entry, kind)
    _set_debit(entry, debit)
    _set_credit(entry, credit)
    _set_minutes(entry, minutes)
    _set_category(entry, category)
    _set_ref(entry, ref)
    _set_actor(entry, actor)
    _set_policy(entry, policy)
    _set_at_ms(entry, at_ms)
    _set_meta(entry, frozen)
    _set_body(entry, body)
    _set_hash(entry, sha256(_LEAF_DATA + body).digest())
    return entry


def _quoted(name: str, value: str) -> str:
    if not value.isascii() and not unicodedata.is_normalized("NFC", value):
        raise NotCanonical("string is not in Unicode NFC", name)
    return encode_json_string(value)


def _meta_json(meta: Mapping[str, Any]) -> str:
    try:
        return encode(dict(meta)).decode("utf-8")
    except NotCanonical as exc:
        raise NotCanonical(exc.reason, f"meta.{exc.field}" if exc.field else "meta") from None


def _body_bytes(
    district: str,
    seq: int,
    prev: bytes,
    id: str,
    kind: str,
    debit: str,
    credit: str,
    minutes: int,
    category: str | None,
    ref: str | None,
    actor: str,
    policy: int,
    at_ms: int,
    meta: Mapping[str, Any],
) -> bytes:
    """The canonical body, written key by key in sorted order: what `canonical.encode` gives
    for these already-validated fields, several times faster (the append path's hot spot)."""
    text = "".join(
        (
            '{"actor":',
            _quoted("actor", actor),
            ',"at":',
            str(at_ms),
            ',"category":',
            "null" if category is None else _quoted("category", category),
            ',"credit":"',
            credit,
            '","debit":"',
            debit,
            '","district":"',
            district,
            '","id":',
            _quoted("id", id),
            ',"kind":"',
            kind,
            '","meta":',
            _meta_json(meta) if meta else "{}",
            ',"minutes":',
            str(minutes),
            ',"policy":',
            str(policy),
            ',"prev":"',
            prev.hex(),
            '","ref":',
            "null" if ref is None else _quoted("ref", ref),
            ',"seq":',
            str(seq),
            ',"v":1}',
        )
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates cannot be UTF-8
        raise NotCanonical("string contains a lone surrogate") from exc


def _parse_prev(value: object) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * HASH_SIZE:
        raise InvalidEntry("prev", "must be 64 lowercase hex characters")
    try:
        prev = bytes.fromhex(value)
    except ValueError as exc:
        raise InvalidEntry("prev", "must be 64 lowercase hex characters") from exc
    if prev.hex() != value:
        raise InvalidEntry("prev", "must be lowercase hex")
    return prev


def entry_from_json(obj: Mapping[str, Any], *, _body: bytes | None = None) -> Entry:
    """Build an entry from its parsed body object (exact key set, version 1)."""
    keys = set(obj)
    if keys != BODY_KEYS:
        missing, extra = sorted(BODY_KEYS - keys), sorted(keys - BODY_KEYS)
        raise InvalidEntry("body", f"missing keys {missing}, unexpected keys {extra}")
    if obj["v"] != ENTRY_VERSION or type(obj["v"]) is not int:
        raise InvalidEntry("v", f"unsupported entry version {obj['v']!r}")
    meta = obj["meta"]
    if not isinstance(meta, dict):
        raise InvalidEntry("meta", "must be an object")
    return build_entry(
        district=obj["district"],
        seq=obj["seq"],
        prev=_parse_prev(obj["prev"]),
        id=obj["id"],
        kind=obj["kind"],
        debit=obj["debit"],
        credit=obj["credit"],
        minutes=obj["minutes"],
        category=obj["category"],
        ref=obj["ref"],
        actor=obj["actor"],
        policy=obj["policy"],
        at_ms=obj["at"],
        meta=meta,
        _body=_body,
    )


def entry_from_bytes(body: bytes) -> Entry:
    """Strictly parse stored bytes: canonical form, exact key set, valid field values."""
    # decode() proved that body is the canonical encoding of the object it parsed, which
    # entry_from_json checks field by field; encoding it again would give the same bytes.
    return entry_from_json(decode(body), _body=bytes(body))


# A fast reader for the verifier: one regular expression that matches exactly the canonical
# bodies with ASCII text, no escapes, integers below 10**15 and a meta of at most eight string
# values, capturing credit, debit, id, kind, meta text, minutes, prev, ref and seq. Meta key
# order is checked by `read_plain_meta`. Bodies it does not match must go through
# `entry_from_bytes`. Text is printable ASCII only, so a match is an ASCII body.
# Possessive repeats (`{m,n}+`): no character class here can also match what follows it, so
# giving characters back can never help a match, and not recording that is about 10 % faster.
_TEXT = rb"[\x20\x21\x23-\x5b\x5d-\x7e]{1,256}+"
_INT = rb"(?:0|[1-9][0-9]{0,14}+)"
_KINDS = b"|".join(sorted(kind.encode() for kind in KIND_VALUES))
_META_KEY = rb'"[a-z_]{1,32}+":"' + _TEXT + rb'"'
_META_PAIR = re.compile(rb'"([a-z_]{1,32}+)":"(' + _TEXT + rb')"')
_PLAIN_ACCOUNT = (
    rb"(?:user:[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}+|clearing:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}+"
    rb"|issuance|pool|expired)"
)


@lru_cache(maxsize=128)
def plain_body_pattern(district: str, *, linked: bool = False) -> re.Pattern[bytes]:
    """The fast reader for one district's chain (the district is matched literally).

    `linked`: for a reader that compares every captured prev with the hex of the entry before
    (`verify.feed_both`), which only lowercase hex can equal; the pattern then skips the 64
    characters instead of testing each (a third of the matching time).
    """
    prev = rb"((?s:.){64})" if linked else rb"([0-9a-f]{64})"
    return re.compile(
        rb'\{"actor":"'
        + _TEXT
        + rb'","at":'
        + _INT
        + rb',"category":(?:null|"'
        + _TEXT
        + rb'"),"credit":"('
        + _PLAIN_ACCOUNT
        + rb')","debit":"('
        + _PLAIN_ACCOUNT
        + rb')","district":"'
        + re.escape(check_district(district).encode())
        + rb'","id":"('
        + _TEXT
        + rb')","kind":"('
        + _KINDS
        + rb')","meta":\{('
        + _META_KEY
        + rb"(?:,"
        + _META_KEY
        + rb"){0,7})?\},"
        + rb'"minutes":([1-9][0-9]{0,14}+),"policy":'
        + _INT
        + rb',"prev":"'
        + prev
        + rb'","ref":(null|"'
        + _TEXT
        + rb'"),"seq":('
        + _INT
        + rb'),"v":1\}'
    )


def read_plain_meta(text: bytes) -> dict[str, str] | None:
    """The meta object captured by `plain_body_pattern`, or None unless its keys are sorted."""
    pairs = _META_PAIR.findall(text)
    keys = [key for key, _ in pairs]
    if any(a >= b for a, b in pairwise(keys)):
        return None
    return {key.decode(): value.decode() for key, value in pairs}
