import pytest

from market.security.throttle import (
    LoginThrottle,
    ThrottleLimits,
    ThrottleScope,
    TooManyAttempts,
)

ACCOUNT = "idx:13812345678"
IP = "203.0.113.7"


def fail_n(throttle: LoginThrottle, n: int, *, start: float = 0.0, account: str = ACCOUNT) -> None:
    for i in range(n):
        throttle.record_failure(account, IP, now=start + i)


class TestCheck:
    def test_fresh_account_passes(self) -> None:
        LoginThrottle().check(ACCOUNT, IP, now=0.0)

    def test_four_failures_still_pass(self) -> None:
        throttle = LoginThrottle()
        fail_n(throttle, 4)
        throttle.check(ACCOUNT, IP, now=4.0)

    def test_fifth_failure_locks_account(self) -> None:
        throttle = LoginThrottle()
        fail_n(throttle, 5)
        with pytest.raises(TooManyAttempts) as info:
            throttle.check(ACCOUNT, IP, now=5.0)
        assert info.value.scope is ThrottleScope.ACCOUNT
        assert info.value.retry_after_seconds == 59
        assert info.value.code == "auth.too_many_attempts"

    def test_lock_applies_from_any_address(self) -> None:
        throttle = LoginThrottle()
        fail_n(throttle, 5)
        with pytest.raises(TooManyAttempts):
            throttle.check(ACCOUNT, "198.51.100.1", now=5.0)

    def test_lock_does_not_touch_other_accounts(self) -> None:
        throttle = LoginThrottle()
        fail_n(throttle, 5)
        throttle.check("idx:other", IP, now=5.0)

    def test_lock_ends(self) -> None:
        throttle = LoginThrottle()
        fail_n(throttle, 5)
        throttle.check(ACCOUNT, IP, now=4.0 + 60)

    def test_failures_outside_the_window_do_not_count(self) -> None:
        throttle = LoginThrottle()
        fail_n(throttle, 4)
        throttle.record_failure(ACCOUNT, IP, now=15 * 60 + 1.0)
        throttle.check(ACCOUNT, IP, now=15 * 60 + 2.0)


class TestExponentialLockout:
    def test_lockouts_double_then_cap(self) -> None:
        throttle = LoginThrottle()
        now = 0.0
        waits = []
        for _ in range(8):
            fail_n(throttle, 5, start=now)
            now += 4
            with pytest.raises(TooManyAttempts) as info:
                throttle.check(ACCOUNT, IP, now=now)
            waits.append(info.value.retry_after_seconds)
            now += info.value.retry_after_seconds
        assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600]

    def test_strikes_are_forgotten_after_a_quiet_day(self) -> None:
        throttle = LoginThrottle()
        fail_n(throttle, 5)
        fail_n(throttle, 5, start=100.0)
        later = 100.0 + 4 + 24 * 3600
        fail_n(throttle, 5, start=later)
        with pytest.raises(TooManyAttempts) as info:
            throttle.check(ACCOUNT, IP, now=later + 4)
        assert info.value.retry_after_seconds == 60


class TestRecordSuccess:
    def test_success_resets_account_failures(self) -> None:
        throttle = LoginThrottle()
        fail_n(throttle, 4)
        throttle.record_success(ACCOUNT, IP, now=4.0)
        fail_n(throttle, 4, start=5.0)
        throttle.check(ACCOUNT, IP, now=9.0)

    def test_success_resets_the_lockout_growth(self) -> None:
        throttle = LoginThrottle()
        fail_n(throttle, 5)
        throttle.record_success(ACCOUNT, IP, now=70.0)
        fail_n(throttle, 5, start=80.0)
        with pytest.raises(TooManyAttempts) as info:
            throttle.check(ACCOUNT, IP, now=84.0)
        assert info.value.retry_after_seconds == 60

    def test_success_does_not_clear_the_client_address(self) -> None:
        limits = ThrottleLimits(3, 900, 60, 3600, 86400)
        throttle = LoginThrottle(client_limits=limits)
        throttle.record_failure("idx:a", IP, now=0.0)
        throttle.record_failure("idx:b", IP, now=1.0)
        throttle.record_success("idx:mine", IP, now=2.0)
        throttle.record_failure("idx:c", IP, now=3.0)
        with pytest.raises(TooManyAttempts) as info:
            throttle.check("idx:mine", IP, now=4.0)
        assert info.value.scope is ThrottleScope.CLIENT


class TestClientAddress:
    def test_spraying_many_accounts_locks_the_address(self) -> None:
        throttle = LoginThrottle()
        for i in range(30):
            throttle.record_failure(f"idx:{i}", IP, now=float(i))
        with pytest.raises(TooManyAttempts) as info:
            throttle.check("idx:fresh", IP, now=30.0)
        assert info.value.scope is ThrottleScope.CLIENT
        throttle.check("idx:fresh", "198.51.100.1", now=30.0)


class TestBoundedMemory:
    def test_flood_of_keys_stays_under_the_cap(self) -> None:
        throttle = LoginThrottle(max_entries=100)
        for i in range(10_000):
            throttle.record_failure(f"idx:{i}", f"10.0.{i // 256}.{i % 256}", now=float(i))
        assert throttle.size <= 200

    def test_forgotten_counters_are_dropped(self) -> None:
        throttle = LoginThrottle()
        fail_n(throttle, 3)
        throttle.record_failure("idx:late", "198.51.100.1", now=2 * 24 * 3600.0)
        assert throttle.size == 2

    def test_failure_history_per_key_is_bounded(self) -> None:
        throttle = LoginThrottle()
        fail_n(throttle, 1000)
        counter = throttle._accounts._counters[ACCOUNT]
        assert len(counter.failures) < 5

    def test_zero_capacity_refused(self) -> None:
        with pytest.raises(ValueError):
            LoginThrottle(max_entries=0)


class TestEvasion:
    def test_rotating_addresses_still_locks_the_account(self) -> None:
        throttle = LoginThrottle()
        for i in range(5):
            throttle.record_failure(ACCOUNT, f"198.51.100.{i}", now=float(i))
        with pytest.raises(TooManyAttempts) as info:
            throttle.check(ACCOUNT, "198.51.100.99", now=5.0)
        assert info.value.scope is ThrottleScope.ACCOUNT

    def test_retry_after_is_never_zero_while_locked(self) -> None:
        throttle = LoginThrottle()
        fail_n(throttle, 5)
        with pytest.raises(TooManyAttempts) as info:
            throttle.check(ACCOUNT, IP, now=4.0 + 59.5)
        assert info.value.retry_after_seconds == 1
