// The live feed over /api/v1/ws (protocol: market/realtime/endpoint.py).
//
// It reconnects by itself with growing, jittered delays, resumes every stream from the last seq
// it saw, drops duplicates by event id (delivery is at-least-once), answers pings, and tells the
// views to reload over HTTP whenever it cannot vouch for having seen everything: after each
// (re)subscription and on a `reset` frame. A 4401 close means the session is over: no retry.

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15_000;
const SEEN_IDS_KEPT = 2000;
const CLOSE_UNAUTHENTICATED = 4401;

export class LiveFeed {
  constructor({ token, url = defaultUrl(), WebSocketImpl = WebSocket } = {}) {
    this.token = token;
    this.url = url;
    this.WebSocketImpl = WebSocketImpl;
    this.lastSeq = new Map(); // stream -> last seq delivered
    this.seen = new Set(); // recent event ids, oldest first (Set keeps insertion order)
    this.handlers = new Set();
    this.syncHandlers = new Set();
    this.statusHandlers = new Set();
    this.authHandlers = new Set();
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.status = "idle";
  }

  // Views register here; each call returns the function that unregisters it.
  onEvent(handler) {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  onSync(handler) {
    this.syncHandlers.add(handler);
    return () => this.syncHandlers.delete(handler);
  }

  onStatus(handler) {
    this.statusHandlers.add(handler);
    handler(this.status);
    return () => this.statusHandlers.delete(handler);
  }

  onAuthFailed(handler) {
    this.authHandlers.add(handler);
    return () => this.authHandlers.delete(handler);
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "signed out");
    this.socket = null;
    this.lastSeq.clear();
    this.seen.clear();
    this.setStatus("idle");
  }

  setStatus(status) {
    this.status = status;
    for (const handler of this.statusHandlers) handler(status);
  }

  connect() {
    const socket = new this.WebSocketImpl(this.url);
    this.socket = socket;
    this.setStatus(this.attempt === 0 ? "connecting" : "reconnecting");
    socket.addEventListener("open", () => {
      // Browsers cannot set headers on an upgrade, so the token goes in the first frame.
      socket.send(JSON.stringify({ type: "auth", token: this.token() }));
    });
    socket.addEventListener("message", (message) => this.receive(socket, message.data));
    socket.addEventListener("close", (event) => this.closed(socket, event));
  }

  receive(socket, data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // the server only sends JSON; anything else is noise to ignore
    }
    switch (frame.type) {
      case "welcome":
        socket.send(JSON.stringify({ type: "subscribe", resume: Object.fromEntries(this.lastSeq) }));
        break;
      case "subscribed":
        this.attempt = 0;
        this.setStatus("live");
        // Streams without a resume point start at their head; record it so a reconnect resumes.
        for (const [stream, position] of Object.entries(frame.streams ?? {})) {
          if (!this.lastSeq.has(stream) && Number.isInteger(position)) this.lastSeq.set(stream, position);
        }
        for (const handler of this.syncHandlers) handler();
        break;
      case "event":
        this.deliver(frame);
        break;
      case "reset":
        if (Number.isInteger(frame.seq)) this.lastSeq.set(frame.stream, frame.seq);
        for (const handler of this.syncHandlers) handler(frame.stream);
        break;
      case "ping":
        socket.send(JSON.stringify({ type: "pong" }));
        break;
      case "error":
        // A stream we may no longer read (a family link revoked): forget its position so a
        // reconnect does not ask to resume it, and let the views reload what they may see.
        if (frame.code === "streams_revoked" || frame.code === "forbidden_streams") {
          for (const stream of frame.streams ?? []) this.lastSeq.delete(stream);
          for (const handler of this.syncHandlers) handler();
        }
        break;
      default:
        break;
    }
  }

  deliver(event) {
    if (this.seen.has(event.id)) return;
    const last = this.lastSeq.get(event.stream);
    if (last !== undefined && event.seq <= last) return;
    this.seen.add(event.id);
    if (this.seen.size > SEEN_IDS_KEPT) this.seen.delete(this.seen.values().next().value);
    this.lastSeq.set(event.stream, event.seq);
    for (const handler of this.handlers) handler(event);
  }

  closed(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    if (this.stopped) return;
    if (event.code === CLOSE_UNAUTHENTICATED) {
      this.stopped = true;
      this.setStatus("idle");
      for (const handler of this.authHandlers) handler(event.reason);
      return;
    }
    this.attempt += 1;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (this.attempt - 1));
    // Full jitter: many clients dropped by one restart do not all come back at once.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.setStatus("reconnecting");
    this.timer = setTimeout(() => this.connect(), delay);
  }
}

function defaultUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/v1/ws`;
}
