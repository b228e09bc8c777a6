"""The `eldercare` command on an embedded database in a temporary data directory."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from tortoise import Tortoise

from market import db
from market.cli import Reporter, main
from market.models import Role, User
from market.settings import load_settings


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("ELDERCARE_DATA_DIR", str(tmp_path))
    return tmp_path


def users(role: Role) -> list[str]:
    async def read() -> list[str]:
        await Tortoise.init(config=db.tortoise_config(load_settings().database_url))
        try:
            return [u.name for u in await User.filter(role=role)]
        finally:
            await Tortoise.close_connections()

    return asyncio.run(read())


class TestMigrate:
    def test_quiet_prints_nothing(self, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["migrate", "--quiet"]) == 0
        assert capsys.readouterr().out == ""
        assert (data_dir / "eldercare.sqlite3").exists()


class TestAdminCreate:
    def test_creates_a_centre_admin(
        self, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        main(["migrate", "--quiet"])
        assert main(["district", "create", "hz", "Hangzhou"]) == 0
        monkeypatch.setenv("ELDERCARE_ADMIN_PASSWORD", "a long secret 7")
        assert (
            main(
                ["admin", "create", "--phone", "13711112222", "--name", "Chen", "--district", "hz"]
            )
            == 0
        )
        assert "created centre_admin Chen" in capsys.readouterr().out
        assert users(Role.centre_admin) == ["Chen"]

    def test_unknown_district_is_refused(
        self, data_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        main(["migrate", "--quiet"])
        monkeypatch.setenv("ELDERCARE_ADMIN_PASSWORD", "a long secret 7")
        with pytest.raises(SystemExit, match="no district 'nowhere'"):
            main(
                [
                    "admin",
                    "create",
                    "--phone",
                    "13711112222",
                    "--name",
                    "Chen",
                    "--district",
                    "nowhere",
                ]
            )
        assert users(Role.centre_admin) == []

    def test_weak_password_is_refused(
        self, data_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        main(["migrate", "--quiet"])
        main(["district", "create", "hz", "Hangzhou"])
        monkeypatch.setenv("ELDERCARE_ADMIN_PASSWORD", "12345678")
        with pytest.raises(SystemExit, match="eldercare: "):
            main(
                ["admin", "create", "--phone", "13711112222", "--name", "Chen", "--district", "hz"]
            )
        assert users(Role.centre_admin) == []

    def test_no_password_and_no_terminal_is_refused(
        self, data_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        main(["migrate", "--quiet"])
        monkeypatch.delenv("ELDERCARE_ADMIN_PASSWORD", raising=False)
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        with pytest.raises(SystemExit, match="ELDERCARE_ADMIN_PASSWORD"):
            main(
                ["admin", "create", "--phone", "13711112222", "--name", "Chen", "--district", "hz"]
            )


class TestDistrictCreate:
    def test_street_under_district(
        self, data_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        main(["migrate", "--quiet"])
        main(["district", "create", "hz", "Hangzhou"])
        assert main(["district", "create", "hz-1", "Wensan Street", "--parent", "hz"]) == 0
        assert "created street hz-1" in capsys.readouterr().out

    def test_duplicate_code_is_refused(self, data_dir: Path) -> None:
        main(["migrate", "--quiet"])
        main(["district", "create", "hz", "Hangzhou"])
        with pytest.raises(SystemExit, match="already used"):
            main(["district", "create", "hz", "Again"])


class TestUnmigrated:
    def test_commands_name_the_fix(
        self, data_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["district", "create", "hz", "Hangzhou"]) == 2
        assert "eldercare migrate" in capsys.readouterr().err


class TestKeysRotate:
    def test_reports_new_keys(
        self, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        main(["migrate", "--quiet"])
        main(["district", "create", "hz", "Hangzhou"])
        monkeypatch.setenv("ELDERCARE_ADMIN_PASSWORD", "a long secret 7")
        main(["admin", "create", "--phone", "13711112222", "--name", "Chen", "--district", "hz"])
        capsys.readouterr()
        assert main(["keys", "rotate", "--quiet"]) == 0
        assert "1 values re-encrypted" in capsys.readouterr().out


class TestReporter:
    def test_silent_when_not_a_terminal(self) -> None:
        stream = io.StringIO()
        reporter = Reporter(quiet=False, stream=stream)
        reporter.progress("elders", 3, 10)
        assert stream.getvalue() == ""

    def test_progress_on_a_terminal(self) -> None:
        class Terminal(io.StringIO):
            def isatty(self) -> bool:
                return True

        stream = Terminal()
        Reporter(quiet=False, stream=stream).progress("elders", 3, 10)
        assert "elders: 3/10" in stream.getvalue()
        quiet = Terminal()
        Reporter(quiet=True, stream=quiet).progress("elders", 3, 10)
        assert quiet.getvalue() == ""


def test_district_code_that_cannot_name_a_chain(data_dir: Path) -> None:
    main(["migrate", "--quiet"])
    with pytest.raises(SystemExit, match="must be 1-32 ASCII"):
        main(["district", "create", "东城", "Dongcheng"])
