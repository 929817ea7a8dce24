// The token helpers and the sign-in page's address: pure functions, no DOM.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";

import { authHeader, clearToken, getToken, isSignInHash, SIGN_IN_PATH, safeNext, setToken, signInHash, TOKEN_KEY } from "../js/auth.js";
import { signInMessage } from "../js/views/signin.js";

/** `next` as the sign-in page would read it back from its own hash. */
function nextOf(hash) {
  const query = hash.split("?").slice(1).join("?");
  return new URLSearchParams(query).get("next");
}

describe("safeNext", () => {
  test("accepts hash routes of this page unchanged", () => {
    for (const ok of ["#/", "#/jobs/12", "#/experiments/3?acc=slim", "#/?status=failed&experiment_id=4", "#/new?from=7"]) {
      assert.equal(safeNext(ok), ok);
    }
  });

  test("anything that is not a local hash goes home (no open redirect)", () => {
    const bad = [
      undefined,
      null,
      "",
      42,
      "/",
      "#",
      "jobs/1",
      "https://evil.example/",
      "//evil.example",
      "#//evil.example",
      "javascript:alert(1)",
      "#javascript:alert(1)",
      "/#/jobs/1",
      "http://127.0.0.1/#/jobs",
      "#/\\evil.example",
      "#/jobs\n/1",
      "#/ jobs",
      "#/jobs\u0000",
      `#/${"x".repeat(3000)}`,
    ];
    for (const value of bad) assert.equal(safeNext(value), "#/", JSON.stringify(value));
  });

  test("never back to the sign-in page itself", () => {
    assert.equal(safeNext("#/sign-in"), "#/");
    assert.equal(safeNext("#/sign-in?next=%23%2Fjobs%2F1"), "#/");
  });
});

describe("signInHash", () => {
  test("remembers the current page as next, encoded", () => {
    const hash = signInHash("#/experiments/3?acc=slim");
    assert.ok(hash.startsWith(`#${SIGN_IN_PATH}?next=`));
    assert.equal(nextOf(hash), "#/experiments/3?acc=slim");
    assert.equal(hash.split("?").length, 2, "the next route's own query is encoded");
  });

  test("an empty hash or a foreign value comes back to the jobs list", () => {
    assert.equal(nextOf(signInHash("")), "#/");
    assert.equal(nextOf(signInHash(undefined)), "#/");
    assert.equal(nextOf(signInHash("#//evil.example")), "#/");
  });

  test("on the sign-in page it keeps the page's own next (no nesting)", () => {
    const first = signInHash("#/jobs/5");
    assert.equal(signInHash(first), first);
    assert.equal(nextOf(signInHash("#/sign-in")), "#/");
    assert.equal(nextOf(signInHash("#/sign-in?next=https%3A%2F%2Fevil.example")), "#/");
  });

  test("isSignInHash looks at the path only", () => {
    assert.ok(isSignInHash("#/sign-in"));
    assert.ok(isSignInHash("#/sign-in?next=%23%2F"));
    assert.ok(!isSignInHash("#/"));
    assert.ok(!isSignInHash("#/sign-in-later"));
    assert.ok(!isSignInHash(""));
  });
});

describe("token storage", () => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, "localStorage");
  beforeEach(() => {
    const data = new Map();
    Object.defineProperty(globalThis, "localStorage", {
      configurable: true,
      value: {
        getItem: (k) => (data.has(k) ? data.get(k) : null),
        setItem: (k, v) => data.set(k, String(v)),
        removeItem: (k) => data.delete(k),
        data,
      },
    });
  });
  afterEach(() => {
    if (saved) Object.defineProperty(globalThis, "localStorage", saved);
    else delete globalThis.localStorage;
  });

  test("set, read and clear under the proxns-token key", () => {
    assert.equal(TOKEN_KEY, "proxns-token");
    assert.equal(getToken(), "");
    setToken("abc");
    assert.equal(globalThis.localStorage.data.get("proxns-token"), "abc");
    assert.equal(getToken(), "abc");
    clearToken();
    assert.equal(getToken(), "");
  });

  test("a storage that throws reads as signed out", () => {
    Object.defineProperty(globalThis, "localStorage", {
      configurable: true,
      get() {
        throw new Error("blocked");
      },
    });
    assert.equal(getToken(), "");
  });
});

describe("authHeader and the sign-in message", () => {
  test("Bearer scheme, nothing for no token", () => {
    assert.equal(authHeader("t0k"), "Bearer t0k");
    assert.equal(authHeader(""), "");
  });

  test("a 401 says the token was refused; other failures say the check failed", () => {
    const msg = signInMessage({ status: 401, detail: "invalid token", message: "invalid token" });
    assert.match(msg, /did not accept this token \(401/);
    assert.match(signInMessage({ status: 0, message: "cannot reach the server" }), /Could not check the token: cannot reach/);
  });
});
