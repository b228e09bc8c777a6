"""Login throttling: failure counters per account and per client address, with growing lockouts.

Pure and in-memory: the caller passes `now` (seconds on a monotonic clock) into every call, so
tests need no sleeping. One instance lives per process; with several processes each keeps its
own counters, which weakens the limit by at most the number of processes.

Trade-off: anyone who knows a phone number can keep that account locked by failing on purpose.
Lockouts are capped (one hour by default) and the account's owner can still be helped by the
centre or the hotline; an unthrottled account would be worse.

Use it around a login::

    throttle.check(phone_index, ip, now=now)          # raises TooManyAttempts
    if verified: throttle.record_success(phone_index, ip, now=now)
    else:        throttle.record_failure(phone_index, ip, now=now)
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from market.security import SecurityError


class ThrottleScope(enum.Enum):
    ACCOUNT = "account"
    CLIENT = "client"


class TooManyAttempts(SecurityError):
    """Too many failed logins; the client may try again after `retry_after_seconds`."""

    code = "auth.too_many_attempts"

    def __init__(self, retry_after_seconds: int, scope: ThrottleScope) -> None:
        super().__init__(
            f"too many failed logins for this {scope.value}; try again in {retry_after_seconds} s"
        )
        self.retry_after_seconds = retry_after_seconds
        self.scope = scope


@dataclass(frozen=True)
class ThrottleLimits:
    """How many failures within `window_seconds` lock a key, and for how long."""

    max_failures: int
    window_seconds: float
    first_lockout_seconds: float
    max_lockout_seconds: float
    # Lockouts double each time; a key that stays quiet this long starts again from the first.
    forget_after_seconds: float

    def lockout(self, strikes: int) -> float:
        growth: float = 2.0 ** min(strikes, 32)
        return min(self.first_lockout_seconds * growth, self.max_lockout_seconds)


# 5 failures in 15 minutes lock an account for 1 min, then 2, 4, ... up to 1 hour.
DEFAULT_ACCOUNT_LIMITS = ThrottleLimits(
    max_failures=5,
    window_seconds=15 * 60,
    first_lockout_seconds=60,
    max_lockout_seconds=60 * 60,
    forget_after_seconds=24 * 60 * 60,
)
# A client address is allowed more: a community centre's shared computer or a carrier NAT puts
# many elders behind one address, and locking it would lock them all out.
DEFAULT_CLIENT_LIMITS = ThrottleLimits(
    max_failures=30,
    window_seconds=15 * 60,
    first_lockout_seconds=60,
    max_lockout_seconds=60 * 60,
    forget_after_seconds=24 * 60 * 60,
)


@dataclass
class _Counter:
    failures: deque[float] = field(default_factory=deque)
    strikes: int = 0
    locked_until: float = 0.0
    last_seen: float = 0.0


class _CounterTable:
    """Counters for one scope, least recently touched first, never more than `max_entries`."""

    def __init__(self, limits: ThrottleLimits, max_entries: int) -> None:
        self.limits = limits
        self.max_entries = max_entries
        self._counters: OrderedDict[str, _Counter] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counters)

    def _forgettable(self, counter: _Counter, now: float) -> bool:
        return counter.locked_until <= now and (
            now - counter.last_seen >= self.limits.forget_after_seconds
        )

    def retry_after(self, key: str, now: float) -> float:
        counter = self._counters.get(key)
        if counter is None:
            return 0.0
        return max(0.0, counter.locked_until - now)

    def fail(self, key: str, now: float) -> None:
        counter = self._counters.pop(key, None)
        if counter is None or self._forgettable(counter, now):
            counter = _Counter()
        counter.last_seen = now
        # Sliding window: only failures within the last window_seconds count.
        horizon = now - self.limits.window_seconds
        while counter.failures and counter.failures[0] <= horizon:
            counter.failures.popleft()
        counter.failures.append(now)
        if len(counter.failures) >= self.limits.max_failures:
            counter.locked_until = now + self.limits.lockout(counter.strikes)
            counter.strikes += 1
            counter.failures.clear()
        self._counters[key] = counter  # re-inserted last: most recently touched
        self._evict(now)

    def clear(self, key: str) -> None:
        self._counters.pop(key, None)

    def _evict(self, now: float) -> None:
        # Oldest-touched first; they are nearly always long forgotten. Only when an attacker
        # floods us with fresh keys do live counters go, and then the oldest of them.
        while len(self._counters) > self.max_entries:
            self._counters.popitem(last=False)
        while self._counters:
            key, counter = next(iter(self._counters.items()))
            if not self._forgettable(counter, now):
                break
            del self._counters[key]


class LoginThrottle:
    """Failure counters for accounts and client addresses; memory bounded by `max_entries`."""

    def __init__(
        self,
        *,
        account_limits: ThrottleLimits = DEFAULT_ACCOUNT_LIMITS,
        client_limits: ThrottleLimits = DEFAULT_CLIENT_LIMITS,
        max_entries: int = 100_000,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._accounts = _CounterTable(account_limits, max_entries)
        self._clients = _CounterTable(client_limits, max_entries)

    @property
    def size(self) -> int:
        """Counters held in memory, accounts and clients together."""
        return len(self._accounts) + len(self._clients)

    def check(self, account_key: str, ip: str, *, now: float) -> None:
        """Raise `TooManyAttempts` if the account or the client address is locked out now."""
        for table, key, scope in (
            (self._accounts, account_key, ThrottleScope.ACCOUNT),
            (self._clients, ip, ThrottleScope.CLIENT),
        ):
            wait = table.retry_after(key, now)
            if wait > 0:
                raise TooManyAttempts(max(1, math.ceil(wait)), scope)

    def record_failure(self, account_key: str, ip: str, *, now: float) -> None:
        """Count a failed login (wrong password, or unknown account) for both keys."""
        self._accounts.fail(account_key, now)
        self._clients.fail(ip, now)

    def record_success(self, account_key: str, ip: str, *, now: float) -> None:
        """Reset the account's counter after a successful login.

        The client address keeps its count: otherwise an attacker who owns one account could
        log into it between guesses to wipe the address's failures.
        """
        self._accounts.clear(account_key)
