// The one way the client talks to the API. It adds the bearer token, turns the API's JSON
// errors ({"error": {"code", "message", "details"}}) into ApiError, turns a dropped connection
// into a network ApiError, and sends the user back to sign-in when the session has ended.

const TOKEN_KEY = "eldercare.token";
const USER_KEY = "eldercare.user";

// Codes that mean "this session is over": the client forgets it and asks to sign in again.
const SESSION_ENDED = new Set(["token_expired", "token_revoked", "token_invalid", "token_missing", "account_suspended"]);

export class ApiError extends Error {
  constructor({ status, code, message, details = null, retryAfter = null }) {
    super(message);
    this.status = status; // 0 when the server could not be reached
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }

  get network() {
    return this.status === 0;
  }
}

let sessionEnded = () => {};

// app.js registers what to do when a request finds the session over (show sign-in + reason).
export function onSessionEnded(handler) {
  sessionEnded = handler;
}

// sessionStorage, not localStorage: a shared family tablet forgets the session with the tab.
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function currentUser() {
  const raw = sessionStorage.getItem(USER_KEY);
  return raw ? JSON.parse(raw) : null;
}

export function saveSession(newToken, user) {
  sessionStorage.setItem(TOKEN_KEY, newToken);
  sessionStorage.setItem(USER_KEY, JSON.stringify(user));
}

export function clearSession() {
  sessionStorage.clear();
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* a proxy's HTML error page: fall back to the status below */
  }
  const error = body && typeof body === "object" ? body.error : null;
  const retry = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  return new ApiError({
    status: response.status,
    code: error?.code ?? `http_${response.status}`,
    message: error?.message ?? response.statusText,
    details: error?.details ?? null,
    retryAfter: Number.isFinite(retry) ? retry : null,
  });
}

export async function request(method, path, body = undefined, { auth = true, endSession = true, headers: extra = {} } = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const bearer = token();
  if (auth && bearer) headers.Authorization = `Bearer ${bearer}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (cause) {
    throw new ApiError({ status: 0, code: "network", message: String(cause?.message ?? cause) });
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (auth && endSession && response.status === 401 && SESSION_ENDED.has(error.code)) {
      clearSession();
      sessionEnded(error);
    }
    throw error;
  }
  if (response.status === 204) return null;
  return response.json();
}

export const get = (path) => request("GET", path);
export const post = (path, body = {}) => request("POST", path, body);

export async function signIn(phone, password) {
  const result = await request("POST", "/api/v1/auth/login", { phone, password }, { auth: false });
  saveSession(result.token, result.user);
  return result.user;
}

export async function signOut() {
  try {
    // A session that already ended needs no second "signed out" message.
    await request("POST", "/api/v1/auth/logout", {}, { endSession: false });
  } finally {
    // Even if the server is unreachable the device must forget the session.
    clearSession();
  }
}
