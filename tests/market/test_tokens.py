import base64
import hashlib
import hmac
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.security.keyfiles import KeySet
from market.security.tokens import (
    TokenClaims,
    TokenExpired,
    TokenFault,
    TokenInvalid,
    TokenSigner,
)

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
TTL = timedelta(hours=1)


def signer(**keys: bytes) -> TokenSigner:
    keys = keys or {"k1": b"\x01" * 32}
    return TokenSigner(KeySet(keys=keys, active_id=max(keys)))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TestIssue:
    def test_claims_match_request(self) -> None:
        token, claims = signer().issue("42", "volunteer", now=NOW, ttl=TTL)
        assert claims.user_id == "42" and claims.role == "volunteer"
        assert claims.issued_at == NOW and claims.expires_at == NOW + TTL
        assert claims.key_id == "k1" and token.startswith("v1.k1.")

    def test_each_token_has_its_own_jti(self) -> None:
        s = signer()
        _, first = s.issue("42", "elder", now=NOW, ttl=TTL)
        _, second = s.issue("42", "elder", now=NOW, ttl=TTL)
        assert first.jti != second.jti

    def test_uuid_and_int_user_ids_become_strings(self) -> None:
        uid = uuid.UUID(int=7)
        _, claims = signer().issue(uid, "family", now=NOW, ttl=TTL)
        assert claims.user_id == str(uid)
        _, claims = signer().issue(7, "family", now=NOW, ttl=TTL)
        assert claims.user_id == "7"

    @pytest.mark.parametrize("role", ["", "Admin", "centre admin", "x" * 40])
    def test_bad_role_refused(self, role: str) -> None:
        with pytest.raises(ValueError):
            signer().issue("42", role, now=NOW, ttl=TTL)

    @pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-5), timedelta(days=31)])
    def test_bad_ttl_refused(self, ttl: timedelta) -> None:
        with pytest.raises(ValueError):
            signer().issue("42", "elder", now=NOW, ttl=ttl)

    def test_naive_now_refused(self) -> None:
        with pytest.raises(ValueError):
            signer().issue("42", "elder", now=datetime(2026, 1, 1), ttl=TTL)


class TestVerify:
    def test_round_trip(self) -> None:
        s = signer()
        token, claims = s.issue("42", "centre_admin", now=NOW, ttl=TTL)
        assert s.verify(token, now=NOW + timedelta(minutes=59)) == claims

    @given(
        user_id=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
        role=st.sampled_from(["elder", "family", "volunteer", "provider_staff", "auditor"]),
        ttl_seconds=st.integers(min_value=1, max_value=30 * 86400),
    )
    def test_round_trip_property(self, user_id: str, role: str, ttl_seconds: int) -> None:
        s = signer()
        token, claims = s.issue(user_id, role, now=NOW, ttl=timedelta(seconds=ttl_seconds))
        assert s.verify(token, now=NOW) == claims

    def test_old_key_still_verifies_after_rotation(self, tmp_path: Path) -> None:
        s = TokenSigner.from_directory(tmp_path / "tokens")
        token, claims = s.issue("42", "elder", now=NOW, ttl=TTL)
        assert s.rotate_key() == "k2"
        new_token, _ = s.issue("42", "elder", now=NOW, ttl=TTL)
        assert new_token.startswith("v1.k2.")
        assert s.verify(token, now=NOW) == claims

    def test_other_process_sees_rotated_key(self, tmp_path: Path) -> None:
        first = TokenSigner.from_directory(tmp_path / "tokens")
        second = TokenSigner.from_directory(tmp_path / "tokens")
        second.rotate_key()
        token, claims = second.issue("42", "elder", now=NOW, ttl=TTL)
        assert first.verify(token, now=NOW) == claims

    def test_key_files_are_private(self, tmp_path: Path) -> None:
        TokenSigner.from_directory(tmp_path / "tokens")
        assert os.stat(tmp_path / "tokens" / "k1.key").st_mode & 0o777 == 0o600

    def test_expired_at_exact_expiry(self) -> None:
        s = signer()
        token, _ = s.issue("42", "elder", now=NOW, ttl=TTL)
        with pytest.raises(TokenExpired) as info:
            s.verify(token, now=NOW + TTL)
        assert info.value.code == "token.expired"
        assert info.value.expired_at == NOW + TTL

    def test_expired_is_a_token_invalid_with_distinct_code(self) -> None:
        s = signer()
        token, _ = s.issue("42", "elder", now=NOW, ttl=TTL)
        with pytest.raises(TokenInvalid) as info:
            s.verify(token, now=NOW + timedelta(days=1))
        assert info.value.code == "token.expired"
        assert TokenInvalid.code == "token.invalid"

    def test_issued_in_the_future_refused(self) -> None:
        s = signer()
        token, _ = s.issue("42", "elder", now=NOW + timedelta(minutes=5), ttl=TTL)
        with pytest.raises(TokenInvalid) as info:
            s.verify(token, now=NOW)
        assert info.value.fault is TokenFault.NOT_YET_VALID

    def test_leeway_accepts_small_clock_difference(self) -> None:
        s = signer()
        token, claims = s.issue("42", "elder", now=NOW + timedelta(seconds=3), ttl=TTL)
        assert s.verify(token, now=NOW, leeway=timedelta(seconds=5)) == claims

    def test_tampered_payload_refused(self) -> None:
        s = signer()
        token, _ = s.issue("42", "elder", now=NOW, ttl=TTL)
        version, kid, body, sig = token.split(".")
        payload = json.loads(base64.urlsafe_b64decode(body + "=="))
        payload["role"] = "centre_admin"
        forged = b64(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
        with pytest.raises(TokenInvalid) as info:
            s.verify(f"{version}.{kid}.{forged}.{sig}", now=NOW)
        assert info.value.fault is TokenFault.BAD_SIGNATURE
        assert info.value.code == "token.invalid"

    def test_tampered_signature_refused(self) -> None:
        s = signer()
        token, _ = s.issue("42", "elder", now=NOW, ttl=TTL)
        head, sig = token.rsplit(".", 1)
        flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
        with pytest.raises(TokenInvalid) as info:
            s.verify(f"{head}.{flipped}", now=NOW)
        assert info.value.fault is TokenFault.BAD_SIGNATURE

    def test_token_from_another_secret_refused(self) -> None:
        token, _ = signer(k1=b"\x02" * 32).issue("42", "elder", now=NOW, ttl=TTL)
        with pytest.raises(TokenInvalid) as info:
            signer().verify(token, now=NOW)
        assert info.value.fault is TokenFault.BAD_SIGNATURE

    def test_unknown_key_id_refused(self) -> None:
        token, _ = signer(k9=b"\x01" * 32).issue("42", "elder", now=NOW, ttl=TTL)
        with pytest.raises(TokenInvalid) as info:
            signer().verify(token, now=NOW)
        assert info.value.fault is TokenFault.UNKNOWN_KEY

    def test_other_version_refused_even_if_correctly_signed(self) -> None:
        s = signer()
        token, _ = s.issue("42", "elder", now=NOW, ttl=TTL)
        _, kid, body, _ = token.split(".")
        signed = f"v2.{kid}.{body}"
        sig = hmac.new(b"\x01" * 32, b"eldercare.token.v1\x00" + signed.encode(), hashlib.sha256)
        with pytest.raises(TokenInvalid) as info:
            s.verify(f"{signed}.{b64(sig.digest())}", now=NOW)
        assert info.value.fault is TokenFault.UNSUPPORTED_VERSION

    def test_jwt_alg_none_refused(self) -> None:
        header = b64(b'{"alg":"none","typ":"JWT"}')
        body = b64(b'{"sub":"42","role":"centre_admin"}')
        with pytest.raises(TokenInvalid) as info:
            signer().verify(f"{header}.{body}.", now=NOW)
        assert info.value.fault is TokenFault.MALFORMED

    def test_signed_garbage_payload_refused(self) -> None:
        body = b64(b'{"sub":"42"}')
        signed = f"v1.k1.{body}"
        sig = hmac.new(b"\x01" * 32, b"eldercare.token.v1\x00" + signed.encode(), hashlib.sha256)
        with pytest.raises(TokenInvalid) as info:
            signer().verify(f"{signed}.{b64(sig.digest())}", now=NOW)
        assert info.value.fault is TokenFault.MALFORMED

    @pytest.mark.parametrize(
        "token",
        [
            "",
            "v1",
            "v1.k1.abc",
            "v1.k1.abc.def.ghi",
            "v1.K1.abc.def",
            "v1.k1.abc.d=f",
            "v1.k1.abc.d+f",
            "v1.k1.\u00e9.abc",
            "v1.k1." + "a" * 600 + ".abc",
            "Bearer v1.k1.abc.def",
        ],
    )
    def test_malformed_input_refused_cleanly(self, token: str) -> None:
        with pytest.raises(TokenInvalid) as info:
            signer().verify(token, now=NOW)
        assert info.value.code == "token.invalid"

    @given(st.text(max_size=200))
    def test_arbitrary_text_never_verifies(self, text: str) -> None:
        with pytest.raises(TokenInvalid):
            signer().verify(text, now=NOW)

    def test_claims_are_frozen(self) -> None:
        _, claims = signer().issue("42", "elder", now=NOW, ttl=TTL)
        assert isinstance(claims, TokenClaims)
        with pytest.raises(AttributeError):
            claims.role = "auditor"  # type: ignore[misc]
