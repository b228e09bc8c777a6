"""static/ws.js: resume, de-duplication, pings and reconnection, then the real thing."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.web.conftest import Server, sign_in

# A scripted socket: records what the client sends and lets the test play server frames.
FAKE_FEED = """async () => {
    const { LiveFeed } = await import('/ws.js');
    const sockets = [];
    class FakeSocket extends EventTarget {
        constructor(url) {
            super();
            this.url = url;
            this.sent = [];
            sockets.push(this);
            setTimeout(() => this.dispatchEvent(new Event('open')), 0);
        }
        send(data) { this.sent.push(JSON.parse(data)); }
        close() {}
        play(frame) {
            this.dispatchEvent(new MessageEvent('message', { data: JSON.stringify(frame) }));
        }
    }
    const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));
    const feed = new LiveFeed({
        token: () => 'secret', url: 'ws://test', WebSocketImpl: FakeSocket,
    });
    const seen = [];
    const statuses = [];
    let syncs = 0;
    let authFailed = null;
    feed.onEvent((e) => seen.push(e.id));
    feed.onSync(() => { syncs += 1; });
    feed.onStatus((s) => statuses.push(s));
    feed.onAuthFailed((reason) => { authFailed = reason; });
    const event = (id, seq) => ({
        type: 'event', id, stream: 'user:a', seq, kind: 'k', payload: {},
    });

    feed.start();
    await tick();
    const first = sockets[0];
    first.play({ type: 'welcome', streams: ['user:a'] });
    first.play({ type: 'subscribed', streams: { 'user:a': 3 } });
    first.play(event('e4', 4));
    first.play(event('e4', 4));   // the same event again (at-least-once delivery)
    first.play(event('e3', 3));   // older than the resume point
    first.play(event('e5', 5));
    first.play({ type: 'ping' });
    first.dispatchEvent(new CloseEvent('close', { code: 1006 }));
    await tick(700);               // the first retry waits 0.25-0.5 s
    const second = sockets[1];
    second.play({ type: 'welcome', streams: ['user:a'] });
    second.play({ type: 'subscribed', streams: { 'user:a': 5 } });
    second.play(event('e5', 5));  // replayed after resume: dropped
    second.play(event('e6', 6));
    second.play({ type: 'reset', stream: 'user:a', seq: 9, reason: 'purged' });
    second.play(event('e8', 8));  // below the reset point: dropped
    second.play(event('e10', 10));
    second.play({ type: 'error', code: 'streams_revoked', streams: ['user:a'], message: 'gone' });
    const resumeAfterRevoke = Object.fromEntries(feed.lastSeq);
    second.dispatchEvent(new CloseEvent('close', { code: 4401, reason: 'token_expired: ended' }));
    await tick(700);
    return {
        sockets: sockets.length,
        firstSent: first.sent,
        secondSent: second.sent,
        seen, syncs, statuses, authFailed, resumeAfterRevoke,
    };
}"""


def test_feed_resumes_drops_duplicates_and_stops_on_401(page: Any, server: Server) -> None:
    page.goto(server.base_url + "/")
    result = page.evaluate(FAKE_FEED)
    assert result["firstSent"] == [
        {"type": "auth", "token": "secret"},
        {"type": "subscribe", "resume": {}},
        {"type": "pong"},
    ]
    # After the drop the client resumes from the last seq it delivered.
    assert result["secondSent"] == [
        {"type": "auth", "token": "secret"},
        {"type": "subscribe", "resume": {"user:a": 5}},
    ]
    assert result["seen"] == ["e4", "e5", "e6", "e10"]
    # Views reload after each subscription, the reset and the revocation.
    assert result["syncs"] == 4
    # A revoked stream is no longer resumed.
    assert result["resumeAfterRevoke"] == {}
    assert "reconnecting" in result["statuses"]
    assert result["statuses"][-1] == "idle"
    # A 4401 close ends the session: no third connection.
    assert result["sockets"] == 2
    assert result["authFailed"] == "token_expired: ended"


def test_dropped_socket_reconnects_and_the_queue_catches_up(
    browser: Any, page: Any, server: Server
) -> None:
    sign_in(page, server, "centre_admin")
    expect(page.get_by_role("heading", level=1)).to_have_text("待处理")
    status = page.locator("#live-status")
    expect(status).to_have_text("实时更新已连接")
    escalated = page.locator('[data-queue="escalated"] li')
    before = escalated.count()
    # Cut the connection from the client side, as a flaky mobile network would.
    page.evaluate(
        """async () => {
            const { live } = await import('/live.js');
            window.statuses = [];
            live.onStatus((s) => window.statuses.push(s));
            live.socket.close();
        }"""
    )

    family_context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        family = family_context.new_page()
        sign_in(family, server, "family")
        family.once("dialog", lambda dialog: dialog.accept())
        family.get_by_role("button", name="紧急求助").click()
        expect(family.locator("main")).to_contain_text("转服务中心处理")
    finally:
        family_context.close()

    expect(status).to_have_text("实时更新已连接")
    expect(escalated).to_have_count(before + 1)
    assert "reconnecting" in page.evaluate("window.statuses")
