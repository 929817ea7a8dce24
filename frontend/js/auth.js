// The API token (kept in localStorage) and the sign-in page's address. Importing this touches no DOM.

export const TOKEN_KEY = "proxns-token";
export const SIGN_IN_PATH = "/sign-in";
const HOME = "#/";

function storage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage blocked (e.g. a sandboxed frame)
  }
}

/** The stored token, or "" when signed out. */
export function getToken() {
  try {
    return storage()?.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(token) {
  storage()?.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  storage()?.removeItem(TOKEN_KEY);
}

/** The value of an `Authorization` header for `token` ("" for none). */
export function authHeader(token) {
  return token ? `Bearer ${token}` : "";
}

/** Whether `hash` (e.g. "#/sign-in?next=…") is the sign-in page. */
export function isSignInHash(hash) {
  const path = String(hash || "")
    .replace(/^#/, "")
    .split("?")[0];
  return path === SIGN_IN_PATH;
}

/**
 * Where to go after signing in: `next` when it is a hash route of this page ("#/…"), else "#/".
 * Guards against open redirects: full URLs, protocol-relative paths ("//host", "#//host"), backslashes,
 * whitespace and control characters are all refused, and so is the sign-in page itself (no loops).
 */
export function safeNext(next) {
  if (typeof next !== "string" || next.length > 2000) return HOME;
  if (!next.startsWith("#/") || next.startsWith("#//")) return HOME;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\s\\\u0000-\u001f\u007f]/.test(next)) return HOME;
  if (isSignInHash(next)) return HOME;
  return next;
}

/** The sign-in page's hash, remembering `currentHash` as where to return (kept as is on the sign-in page). */
export function signInHash(currentHash) {
  let next = currentHash || HOME;
  if (isSignInHash(next)) {
    const query = String(next).split("?").slice(1).join("?");
    next = new URLSearchParams(query).get("next") || HOME;
  }
  return `#${SIGN_IN_PATH}?next=${encodeURIComponent(safeNext(next))}`;
}
