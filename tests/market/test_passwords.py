import time

import pytest

from market.security.passwords import (
    DEFAULT_PARAMS,
    MAX_LENGTH,
    PasswordHashMalformed,
    PasswordProblem,
    ScryptParams,
    WeakPassword,
    check_password_strength,
    dummy_verify,
    hash_password,
    needs_rehash,
    verify_password,
)

# The cheapest allowed cost keeps the suite fast where the cost itself is not under test.
FAST = ScryptParams(n=2**10, r=8, p=1)


class TestHashPassword:
    def test_encodes_parameters_salt_and_hash(self) -> None:
        encoded = hash_password("correct horse", params=FAST)
        scheme, n, r, p, salt, digest = encoded.split("$")
        assert (scheme, n, r, p) == ("scrypt", "1024", "8", "1")
        assert len(salt) == 22 and len(digest) == 43

    def test_same_password_gets_a_fresh_salt_each_time(self) -> None:
        assert hash_password("correct horse", params=FAST) != hash_password(
            "correct horse", params=FAST
        )

    def test_default_cost_stays_under_budget(self) -> None:
        start = time.perf_counter()
        encoded = hash_password("correct horse")
        elapsed = time.perf_counter() - start
        assert encoded.startswith(f"scrypt${DEFAULT_PARAMS.n}$")
        # Budget is ~100 ms; allow slack for a busy CI machine.
        assert elapsed < 0.5

    def test_refuses_overlong_password(self) -> None:
        with pytest.raises(WeakPassword) as info:
            hash_password("x" * (MAX_LENGTH + 1), params=FAST)
        assert info.value.problems == (PasswordProblem.TOO_LONG,)

    def test_out_of_range_parameters_are_refused(self) -> None:
        with pytest.raises(ValueError):
            ScryptParams(n=3000, r=8, p=1)
        with pytest.raises(ValueError):
            ScryptParams(n=2**24, r=8, p=1)


class TestVerifyPassword:
    def test_right_password(self) -> None:
        assert verify_password("correct horse", hash_password("correct horse", params=FAST))

    def test_wrong_password(self) -> None:
        assert not verify_password("correct horsE", hash_password("correct horse", params=FAST))

    def test_empty_password_against_real_hash(self) -> None:
        assert not verify_password("", hash_password("correct horse", params=FAST))

    def test_unicode_normalisation_forms_match(self) -> None:
        composed, decomposed = "caf\u00e9-\u8001\u4eba-pass", "cafe\u0301-\u8001\u4eba-pass"
        assert verify_password(decomposed, hash_password(composed, params=FAST))

    def test_overlong_password_is_false_not_an_error(self) -> None:
        assert not verify_password("x" * (MAX_LENGTH + 1), hash_password("x", params=FAST))

    @pytest.mark.parametrize(
        "encoded",
        [
            "",
            "bcrypt$2b$12$abc",
            "scrypt$16384$8$1$c2FsdA",
            "scrypt$16384$8$1$!!!!$!!!!",
            "scrypt$abc$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "scrypt$-16384$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "scrypt$1073741824$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "scrypt$16384$8$1$c2E$aGFzaGhhc2hoYXNoaGFzaA",
        ],
    )
    def test_malformed_stored_hash_raises(self, encoded: str) -> None:
        with pytest.raises(PasswordHashMalformed) as info:
            verify_password("whatever1", encoded)
        assert info.value.code == "password.hash_malformed"

    def test_altered_digest_fails(self) -> None:
        encoded = hash_password("correct horse", params=FAST)
        head, digest = encoded.rsplit("$", 1)
        flipped = ("B" if digest[0] == "A" else "A") + digest[1:]
        assert not verify_password("correct horse", f"{head}${flipped}")


class TestNeedsRehash:
    def test_current_parameters_need_no_rehash(self) -> None:
        assert not needs_rehash(hash_password("correct horse", params=FAST), params=FAST)

    def test_weaker_parameters_need_rehash(self) -> None:
        assert needs_rehash(hash_password("correct horse", params=FAST))

    def test_stronger_than_target_needs_no_rehash(self) -> None:
        stronger = ScryptParams(n=2**11, r=8, p=1)
        assert not needs_rehash(hash_password("correct horse", params=stronger), params=FAST)

    def test_unreadable_hash_needs_rehash(self) -> None:
        assert needs_rehash("plain-text-password")


class TestDummyVerify:
    def test_always_false(self) -> None:
        assert dummy_verify("correct horse") is False

    def test_takes_about_as_long_as_a_real_verify(self) -> None:
        real = hash_password("correct horse")
        dummy_verify()  # first call builds the dummy hash; time the steady state
        start = time.perf_counter()
        verify_password("wrong guess", real)
        real_time = time.perf_counter() - start
        start = time.perf_counter()
        dummy_verify("wrong guess")
        dummy_time = time.perf_counter() - start
        assert dummy_time > real_time / 3


class TestCheckPasswordStrength:
    def test_good_password_passes(self) -> None:
        check_password_strength("Lao-Wang 1958!", phone="13812345678")

    def test_good_password_without_phone(self) -> None:
        check_password_strength("tea and dumplings")

    def test_too_short(self) -> None:
        with pytest.raises(WeakPassword) as info:
            check_password_strength("ab1!")
        assert info.value.problems == (PasswordProblem.TOO_SHORT,)
        assert "at least 8" in info.value.message

    def test_all_digits(self) -> None:
        with pytest.raises(WeakPassword) as info:
            check_password_strength("19580101")
        assert PasswordProblem.ALL_DIGITS in info.value.problems

    def test_equal_to_phone(self) -> None:
        with pytest.raises(WeakPassword) as info:
            check_password_strength("13812345678", phone="138 1234 5678")
        assert PasswordProblem.CONTAINS_PHONE in info.value.problems
        assert PasswordProblem.ALL_DIGITS in info.value.problems

    def test_contains_phone_tail(self) -> None:
        with pytest.raises(WeakPassword) as info:
            check_password_strength("wang12345678", phone="+86 138-1234-5678")
        assert info.value.problems == (PasswordProblem.CONTAINS_PHONE,)

    def test_single_repeated_character(self) -> None:
        with pytest.raises(WeakPassword) as info:
            check_password_strength("aaaaaaaaaa")
        assert info.value.problems == (PasswordProblem.ONE_CHARACTER,)

    def test_common_password_any_case(self) -> None:
        with pytest.raises(WeakPassword) as info:
            check_password_strength("PassWord123")
        assert info.value.problems == (PasswordProblem.COMMON,)
        assert info.value.code == "password.weak"

    def test_lists_every_problem_at_once(self) -> None:
        with pytest.raises(WeakPassword) as info:
            check_password_strength("1111")
        assert info.value.problems == (
            PasswordProblem.TOO_SHORT,
            PasswordProblem.ALL_DIGITS,
            PasswordProblem.ONE_CHARACTER,
        )
