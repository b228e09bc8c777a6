"""docker-compose.yml is accepted by Compose, and the README keeps its two commands."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_compose_file_is_valid() -> None:
    command = compose_command()
    if command is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must have docker compose or docker-compose to validate the file")
        pytest.skip("no docker compose on this machine")
    result = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_readme_gives_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "./scripts/run" in readme
    assert "./scripts/test" in readme
    for script in ("scripts/run", "scripts/test"):
        assert os.access(ROOT / script, os.X_OK), f"{script} is not executable"
