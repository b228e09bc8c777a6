"""The API beside the browser: what a test sets up or checks without clicking through it.

Plain urllib against the test server, so a check reads the server's state, not the page's.
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime
from typing import Any

from tests.web.conftest import Server


def api(server: Server, method: str, path: str, body: Any = None, token: str = "") -> Any:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.base_url + path, data, headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def token_of(server: Server, role: str) -> str:
    body = {"phone": server.account(role)["phone"], "password": server.password}
    return str(api(server, "POST", "/api/v1/auth/login", body)["token"])


def book(
    server: Server,
    role: str,
    *,
    service: str,
    elder: str,
    start: datetime,
    end: datetime | None = None,
) -> str:
    """Book `service` for the seeded account `elder` as `role`, paid publicly; the booking id."""
    body = {
        "service": service,
        "elder_id": server.account(elder)["id"],
        "window_start": start.isoformat(),
        "payment": "public",
    }
    if end is not None:
        body["window_end"] = end.isoformat()
    created = api(server, "POST", "/api/v1/requests", body, token_of(server, role))
    return str(created["bookings"][0]["id"])


def booking_of(server: Server, booking_id: str, token: str) -> dict[str, Any]:
    return api(server, "GET", f"/api/v1/bookings/{booking_id}", token=token)["booking"]  # type: ignore[no-any-return]


def wait_for_offer(server: Server, booking_id: str, token: str) -> dict[str, Any]:
    """The matcher's offer of the booking to the helper whose token this is (it runs every
    second in the test server)."""
    deadline = time.monotonic() + 20
    while True:
        offers = api(server, "GET", "/api/v1/offers", token=token)["offers"]
        mine = [o for o in offers if o["booking_id"] == booking_id]
        if mine:
            return mine[0]  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"the matcher made no offer for {booking_id}"
        time.sleep(0.5)
