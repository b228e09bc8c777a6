"""The machine line every matching benchmark prints: cores, CPU model, date."""

from __future__ import annotations

import datetime
import os
import subprocess


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def machine_line() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"machine: {os.cpu_count()} cores, {cpu_model()}, load average {load}, {today}"
