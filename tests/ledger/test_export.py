"""Export files: layout, round trip, and verification with nothing but those files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.checkpoint import KeyHistory, key_history, rotate_key, sign_checkpoint
from ledger.errors import ExportInvalid
from ledger.export import read_export, verify_export, write_export
from ledger.keys import KeyStore, PublicKey, Signer
from ledger.merkle import MerkleIndex
from tests.ledger.test_verify_history import ChainBuilder, random_history
from tests.ledger.test_verify_mirrors import Pair

SIGNER = Signer.generate()


def history_of(signer: Signer, district: str = "xuhui") -> KeyHistory:
    return KeyHistory(district, (PublicKey(signer.key_id, signer.public, 0),))


def export(directory: Path, builder: ChainBuilder, **kw: object) -> Path:
    return write_export(
        directory,
        builder.district,
        builder.bodies,
        builder.checkpoint(SIGNER),
        history_of(SIGNER, builder.district),
        **kw,  # type: ignore[arg-type]
    )


class TestLayout:
    def test_files_per_district(self, tmp_path: Path) -> None:
        export(tmp_path, random_history(1, 5), balances={"issuance": 0})
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "xuhui.balances.json",
            "xuhui.checkpoint.json",
            "xuhui.jsonl",
            "xuhui.keys.json",
        ]

    def test_one_stored_body_per_line(self, tmp_path: Path) -> None:
        builder = random_history(1, 5)
        path = export(tmp_path, builder)
        assert path.read_bytes() == b"".join(body + b"\n" for body in builder.bodies)

    def test_round_trip(self, tmp_path: Path) -> None:
        builder = random_history(1, 5)
        chain = read_export(export(tmp_path, builder, balances=builder.balances))
        assert chain.district == "xuhui"
        assert chain.bodies == builder.bodies
        assert chain.checkpoint == builder.checkpoint(SIGNER)
        assert chain.keys == history_of(SIGNER)
        assert chain.balances == builder.balances

    def test_count_reads_the_lines_block_by_block(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("ledger.export.BLOCK", 100)  # shorter than one entry
        builder = random_history(1, 30)
        assert read_export(export(tmp_path, builder)).count == 30

    def test_refuses_a_body_with_a_newline(self, tmp_path: Path) -> None:
        with pytest.raises(ExportInvalid, match="newline"):
            write_export(tmp_path, "xuhui", [b"{}\n{}"], None, history_of(SIGNER))


class TestVerifyExport:
    def test_valid_directory_with_mirrored_districts(self, tmp_path: Path) -> None:
        pair = Pair()
        hold = pair.hold("t1", 60)
        pair.credit(hold)
        pair.close(hold)
        export(tmp_path, pair.a)
        export(tmp_path, pair.b)
        report = verify_export(tmp_path)
        assert report.ok, report.reason
        assert [r.district for r in report.chains] == ["minhang", "xuhui"]
        assert report.mirrors.net[("xuhui", "minhang")] == 60

    def test_single_file(self, tmp_path: Path) -> None:
        path = export(tmp_path, random_history(2, 40))
        report = verify_export(path)
        assert report.ok and report.chains[0].checkpoints_verified == 1

    def test_broken_mirror_fails_the_directory(self, tmp_path: Path) -> None:
        pair = Pair()
        hold = pair.hold("t1", 60)
        pair.close(hold)
        export(tmp_path, pair.a)
        export(tmp_path, pair.b)
        report = verify_export(tmp_path)
        assert not report.ok and "has no credit" in report.reason

    def test_tampered_line_names_its_seq(self, tmp_path: Path) -> None:
        builder = random_history(2, 40)
        path = export(tmp_path, builder)
        lines = path.read_bytes().split(b"\n")
        lines[17] = lines[17].replace(b'"policy":1', b'"policy":7')
        path.write_bytes(b"\n".join(lines))
        report = verify_export(path)
        assert report.chains[0].first_bad_seq == 17
        assert report.reason.startswith("xuhui: seq 17")

    def test_stored_balances_are_compared(self, tmp_path: Path) -> None:
        builder = random_history(2, 40)
        wrong = dict(builder.balances, issuance=builder.balances["issuance"] - 1)
        path = export(tmp_path, builder, balances=wrong)
        assert "stored balance" in verify_export(path).reason

    def test_trusted_first_key(self, tmp_path: Path) -> None:
        path = export(tmp_path, random_history(2, 10))
        assert verify_export(path, trusted_key_ids={"xuhui": SIGNER.key_id}).ok
        other = verify_export(path, trusted_key_ids={"xuhui": "0" * 32})
        assert "not the trusted" in other.reason

    def test_checkpoint_signed_by_another_key(self, tmp_path: Path) -> None:
        builder = random_history(2, 10)
        path = export(tmp_path, builder)
        (tmp_path / "xuhui.keys.json").write_text(
            json.dumps(history_of(Signer.generate()).to_json())
        )
        assert "unknown key" in verify_export(path).reason

    def test_missing_keys_file(self, tmp_path: Path) -> None:
        path = export(tmp_path, random_history(2, 10))
        (tmp_path / "xuhui.keys.json").unlink()
        assert "keys.json is missing" in verify_export(path).reason

    def test_truncated_file_without_final_newline(self, tmp_path: Path) -> None:
        path = export(tmp_path, random_history(2, 10))
        path.write_bytes(path.read_bytes()[:-5])
        with pytest.raises(ExportInvalid, match="newline"):
            verify_export(path)

    def test_whole_lines_cut_below_the_checkpoint(self, tmp_path: Path) -> None:
        path = export(tmp_path, random_history(2, 10))
        lines = path.read_bytes().split(b"\n")
        path.write_bytes(b"\n".join(lines[:7]) + b"\n")
        report = verify_export(path)
        assert report.chains[0].first_bad_seq == 7 and "missing" in report.reason

    def test_malformed_checkpoint_file(self, tmp_path: Path) -> None:
        path = export(tmp_path, random_history(2, 10))
        (tmp_path / "xuhui.checkpoint.json").write_text('{"size": 3}')
        with pytest.raises(ExportInvalid, match="checkpoint"):
            verify_export(path)

    def test_malformed_balances_file(self, tmp_path: Path) -> None:
        path = export(tmp_path, random_history(2, 10), balances={"issuance": 0})
        (tmp_path / "xuhui.balances.json").write_text('{"issuance": 1.5}')
        with pytest.raises(ExportInvalid, match="integer"):
            verify_export(path)

    def test_empty_directory(self, tmp_path: Path) -> None:
        with pytest.raises(ExportInvalid, match=r"no \.jsonl"):
            verify_export(tmp_path)

    def test_missing_path(self, tmp_path: Path) -> None:
        with pytest.raises(ExportInvalid, match="does not exist"):
            verify_export(tmp_path / "nope.jsonl")

    def test_bad_file_name(self, tmp_path: Path) -> None:
        with pytest.raises(ExportInvalid, match="district"):
            read_export(tmp_path / "a:b.jsonl")


class TestRotatedKeys:
    def test_checkpoint_signed_after_a_rotation(self, tmp_path: Path) -> None:
        builder = random_history(5, 30)
        index = MerkleIndex.from_leaves(builder.hashes)
        store = KeyStore(tmp_path / "keys", "pass", work_factor=2**10)
        first = store.create("xuhui")
        rotate_key(store, "xuhui", size=12, root=index.root(12), at_ms=1)
        cp = sign_checkpoint(
            district="xuhui", size=30, root=index.root(), at_ms=2, signer=store.signer("xuhui")
        )
        path = write_export(
            tmp_path / "out", "xuhui", builder.bodies, cp, key_history(store, "xuhui")
        )
        assert verify_export(path, trusted_key_ids={"xuhui": first}).ok

    def test_checkpoint_signed_by_the_retired_key_is_refused(self, tmp_path: Path) -> None:
        builder = random_history(5, 30)
        index = MerkleIndex.from_leaves(builder.hashes)
        store = KeyStore(tmp_path / "keys", "pass", work_factor=2**10)
        store.create("xuhui")
        retired = store.signer("xuhui")
        rotate_key(store, "xuhui", size=12, root=index.root(12), at_ms=1)
        cp = sign_checkpoint(district="xuhui", size=30, root=index.root(), at_ms=2, signer=retired)
        path = write_export(
            tmp_path / "out", "xuhui", builder.bodies, cp, key_history(store, "xuhui")
        )
        report = verify_export(path)
        assert not report.ok and "may not sign a checkpoint of size 30" in report.reason
