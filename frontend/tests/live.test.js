import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";

import {
  eventsUrl,
  LIVE_KEY,
  liveOrPoll,
  MAX_BACKOFF_MS,
  pollingDisabled,
  RETRY_MS,
  SILENCE_MS,
  sseParser,
  subscribe,
  whenVisible,
} from "../js/live.js";
import { POLL_KEY, poll } from "../js/poll.js";

// ------------------------------------------------------------------ fakes: clock, storage, fetch, document

const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

/** Drain promise jobs and stream reads (several rounds: a read resolves through a few promises). */
async function settle() {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A fake setTimeout/clearTimeout with a clock moved by `advance(ms)`. */
function fakeClock() {
  let now = 0;
  let seq = 0;
  const timers = new Map();
  globalThis.setTimeout = (fn, ms = 0) => {
    seq += 1;
    timers.set(seq, { at: now + ms, fn });
    return seq;
  };
  globalThis.clearTimeout = (id) => timers.delete(id);
  return {
    get now() {
      return now;
    },
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        await settle();
        const due = [...timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = end;
      await settle();
    },
    restore() {
      globalThis.setTimeout = realSetTimeout;
      globalThis.clearTimeout = realClearTimeout;
    },
  };
}

function fakeStorage(entries = {}) {
  const map = new Map(Object.entries(entries));
  return {
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => map.set(k, String(v)),
    removeItem: (k) => map.delete(k),
  };
}

/** A response whose body the test writes: `send(text)`, `end()`, `fail()`. */
function streamResponse(status = 200) {
  let controller;
  const body = new ReadableStream({
    start(c) {
      controller = c;
    },
  });
  const encoder = new TextEncoder();
  return {
    status,
    ok: status >= 200 && status < 300,
    body,
    send: (text) => {
      try {
        controller.enqueue(encoder.encode(text));
      } catch {
        // the reader went away (stop, abort): the bytes go nowhere, as on a closed socket
      }
    },
    end: () => controller.close(),
    fail: () => controller.error(new TypeError("network error")),
  };
}

/** fetch() answering from a script: each call takes the next item (a response, or an Error to throw). */
function fakeFetch(script) {
  const calls = [];
  globalThis.fetch = async (url, init) => {
    calls.push({ url, init, at: calls.length });
    const next = script.shift();
    if (next === undefined) throw new Error("unexpected fetch");
    if (next instanceof Error) throw next;
    init?.signal?.addEventListener("abort", () => {
      try {
        next.fail?.();
      } catch {
        // already closed
      }
    });
    return next;
  };
  return calls;
}

function fakeDocument(state = "visible") {
  const listeners = new Set();
  return {
    visibilityState: state,
    addEventListener: (type, fn) => type === "visibilitychange" && listeners.add(fn),
    removeEventListener: (_type, fn) => listeners.delete(fn),
    listeners,
    set(next) {
      this.visibilityState = next;
      for (const fn of [...listeners]) fn();
    },
  };
}

const hello = 'event: hello\ndata: {"version":7}\nretry: 3000\n\n';

// ------------------------------------------------------------------ the parser

describe("sseParser", () => {
  const STREAM = [
    "\ufeff: a comment first\r\n",
    "retry: 2500\r\n\r\n",
    "event: job\r\n",
    'data: {"id":1,\r\n',
    'data: "status":"running"}\r\n',
    "id: 41\r\n\r\n",
    "event:epoch\n",
    'data:{"job_id":1,"epoch":3}\n\n',
    ": ping - 2026-11-27\r",
    "event: deleted\r",
    'data: {"job_id":2}\r\r',
    "data\n\n", // a field with no colon: data is ""
    "event: unfinished\ndata: never dispatched",
  ].join("");

  function parse(chunks) {
    const events = [];
    const comments = [];
    const retries = [];
    const parser = sseParser({
      onEvent: (e) => events.push(e),
      onComment: (c) => comments.push(c),
      onRetry: (ms) => retries.push(ms),
    });
    for (const chunk of chunks) parser.push(chunk);
    return { events, comments, retries, lastEventId: parser.lastEventId };
  }

  const expected = {
    events: [
      { event: "job", data: '{"id":1,\n"status":"running"}', id: "41" },
      { event: "epoch", data: '{"job_id":1,"epoch":3}', id: "41" },
      { event: "deleted", data: '{"job_id":2}', id: "41" },
      { event: "message", data: "", id: "41" },
    ],
    comments: ["a comment first", "ping - 2026-11-27"],
    retries: [2500],
    lastEventId: "41",
  };

  test("the whole stream at once: events, multi-line data, id, retry, comments, CR/LF/CRLF", () => {
    assert.deepEqual(parse([STREAM]), expected);
    assert.equal(JSON.parse(expected.events[0].data).status, "running");
  });

  test("one character per chunk (every CRLF split between chunks) gives the same", () => {
    assert.deepEqual(parse([...STREAM]), expected);
  });

  test("every split into two chunks gives the same, empty chunks included", () => {
    for (let i = 0; i <= STREAM.length; i++) {
      assert.deepEqual(parse([STREAM.slice(0, i), "", STREAM.slice(i)]), expected, `split at ${i}`);
    }
  });

  test("a CR at a chunk's end followed by a chunk that starts a new line is one line end, not two", () => {
    const { events } = parse(["data: a\r", "\ndata: b\r", "\r", "\n"]);
    // "data: a" CRLF, "data: b" CR, then CR (the empty line: dispatch), then LF (another empty line)
    assert.deepEqual(
      events.map((e) => e.data),
      ["a\nb"],
    );
  });

  test("a retry that is not all digits is ignored", () => {
    assert.deepEqual(parse(["retry: 10s\n", "retry: -5\n", "retry: 700\n\n"]).retries, [700]);
  });
});

describe("eventsUrl", () => {
  test("job ids repeat job_id; an experiment is experiment_id; none is every job", () => {
    assert.equal(eventsUrl({ jobIds: [3, 14] }), "/api/events?job_id=3&job_id=14");
    assert.equal(eventsUrl({ experimentId: 5 }), "/api/events?experiment_id=5");
    assert.equal(eventsUrl({}), "/api/events");
  });
});

// ------------------------------------------------------------------ subscribe: events, reconnects, fallback

describe("subscribe", () => {
  let clock;
  beforeEach(() => {
    clock = fakeClock();
    globalThis.localStorage = fakeStorage({ "proxns-token": "pxn_secret" });
    globalThis.location = { hash: "#/jobs/3" };
  });
  afterEach(() => {
    clock.restore();
    delete globalThis.fetch;
    delete globalThis.localStorage;
    delete globalThis.location;
  });

  test("sends the Bearer header and hands each event's JSON to its handler", async () => {
    const response = streamResponse();
    const calls = fakeFetch([response]);
    const got = [];
    const stop = subscribe(
      { jobIds: [3] },
      {
        onOpen: (d) => got.push(["open", d]),
        onJob: (d) => got.push(["job", d]),
        onEpoch: (d) => got.push(["epoch", d]),
        onDeleted: (d) => got.push(["deleted", d]),
        onFallback: () => got.push(["fallback"]),
      },
    );
    await settle();
    assert.equal(calls.length, 1);
    assert.equal(calls[0].url, "/api/events?job_id=3");
    assert.equal(calls[0].init.headers.Authorization, "Bearer pxn_secret");
    response.send(hello);
    response.send('event: epoch\ndata: {"job_id":3,"epoch":2,"test_acc":0.5}\n\n: ping\n\nevent: jo');
    response.send('b\ndata: {"id":3,"status":"succeeded"}\n\nevent: deleted\ndata: {"job_id":3}\n\n');
    await settle();
    assert.deepEqual(got, [
      ["open", { version: 7 }],
      ["epoch", { job_id: 3, epoch: 2, test_acc: 0.5 }],
      ["job", { id: 3, status: "succeeded" }],
      ["deleted", { job_id: 3 }],
    ]);
    stop();
    response.send('event: job\ndata: {"id":3}\n\n');
    await clock.advance(60000);
    assert.equal(got.length, 4, "nothing after stop()");
    assert.equal(calls.length, 1, "no reconnect after stop()");
  });

  test("a dropped stream is reopened after retry, doubled per failure in a row, reset by hello", async () => {
    const streams = [streamResponse(), streamResponse(), streamResponse(), streamResponse(), streamResponse()];
    const calls = fakeFetch([...streams]);
    let opens = 0;
    let fallbacks = 0;
    const stop = subscribe({}, { onOpen: () => opens++, onFallback: () => fallbacks++ });
    await settle();
    streams[0].send(hello);
    await settle();
    streams[0].end(); // dropped after opening: 3 s
    await clock.advance(RETRY_MS - 1);
    assert.equal(calls.length, 1);
    await clock.advance(1);
    assert.equal(calls.length, 2);
    streams[1].end(); // closed before hello: the second failure in a row, 6 s
    await clock.advance(2 * RETRY_MS - 1);
    assert.equal(calls.length, 2);
    await clock.advance(1);
    assert.equal(calls.length, 3);
    streams[2].fail(); // broken mid-read: 12 s
    await clock.advance(4 * RETRY_MS - 1);
    assert.equal(calls.length, 3);
    await clock.advance(1);
    assert.equal(calls.length, 4);
    streams[3].send('retry: 1000\n\nevent: hello\ndata: {"version":9}\n\n'); // opens: back to the first wait
    await settle();
    streams[3].end();
    await clock.advance(999);
    assert.equal(calls.length, 4);
    await clock.advance(1);
    assert.equal(calls.length, 5);
    assert.equal(opens, 2);
    assert.equal(fallbacks, 0);
    stop();
  });

  test("the backoff stops growing at 30 s", async () => {
    const script = Array.from({ length: 8 }, () => streamResponse());
    const calls = fakeFetch([...script]);
    const stop = subscribe({}, {});
    for (let i = 0; i < 6; i++) {
      await settle();
      script[i].end();
      await clock.advance(Math.min(RETRY_MS * 2 ** i, MAX_BACKOFF_MS));
      assert.equal(calls.length, i + 2, `reconnect ${i + 1}`);
    }
    const before = clock.now;
    await settle();
    script[6].end();
    await clock.advance(MAX_BACKOFF_MS - 1);
    assert.equal(calls.length, 7);
    await clock.advance(1);
    assert.equal(calls.length, 8);
    assert.equal(clock.now - before, MAX_BACKOFF_MS);
    stop();
  });

  test("silence for 45 s (three missed pings) aborts and reopens the stream", async () => {
    const streams = [streamResponse(), streamResponse()];
    const calls = fakeFetch([...streams]);
    const stop = subscribe({}, {});
    await settle();
    streams[0].send(hello);
    await clock.advance(SILENCE_MS - 1000);
    streams[0].send(": ping\n\n"); // any byte resets the watch
    await clock.advance(SILENCE_MS - 1);
    assert.equal(calls.length, 1);
    await clock.advance(1 + RETRY_MS);
    assert.equal(calls.length, 2);
    stop();
  });

  test("a network error twice in a row falls back once, and nothing more is fetched", async () => {
    const calls = fakeFetch([new TypeError("Failed to fetch"), new TypeError("Failed to fetch")]);
    let fallbacks = 0;
    subscribe({ experimentId: 2 }, { onFallback: () => fallbacks++ });
    await settle();
    assert.equal(fallbacks, 0, "one network error is retried");
    await clock.advance(RETRY_MS);
    assert.equal(calls.length, 2);
    assert.equal(fallbacks, 1);
    await clock.advance(10 * MAX_BACKOFF_MS);
    assert.equal(calls.length, 2);
    assert.equal(fallbacks, 1);
  });

  test("an HTTP error other than 401 falls back at once", async () => {
    const calls = fakeFetch([streamResponse(404)]);
    let fallbacks = 0;
    subscribe({ jobIds: [99] }, { onFallback: () => fallbacks++ });
    await clock.advance(MAX_BACKOFF_MS);
    assert.equal(fallbacks, 1);
    assert.equal(calls.length, 1);
  });

  test("a 401 opens the sign-in page instead (no fallback, no retry)", async () => {
    const calls = fakeFetch([streamResponse(401)]);
    let fallbacks = 0;
    subscribe({}, { onFallback: () => fallbacks++ });
    await clock.advance(MAX_BACKOFF_MS);
    assert.equal(globalThis.location.hash, `#/sign-in?next=${encodeURIComponent("#/jobs/3")}`);
    assert.equal(fallbacks, 0);
    assert.equal(calls.length, 1);
  });

  test("localStorage proxns-live=off falls back without fetching (unless stopped first)", async () => {
    globalThis.localStorage.setItem(LIVE_KEY, "off");
    const calls = fakeFetch([]);
    let fallbacks = 0;
    subscribe({}, { onFallback: () => fallbacks++ });
    await settle();
    assert.equal(fallbacks, 1);
    assert.equal(calls.length, 0);
    const stop = subscribe({}, { onFallback: () => fallbacks++ });
    stop();
    await settle();
    assert.equal(fallbacks, 1, "a subscription stopped at once never falls back");
  });
});

// ------------------------------------------------------------------ visibility, polling, the page helper

describe("whenVisible", () => {
  test("runs start while visible, stops it when hidden, starts it again when shown", () => {
    const doc = fakeDocument("visible");
    const log = [];
    let n = 0;
    const stop = whenVisible(() => {
      const mine = ++n;
      log.push(`start ${mine}`);
      return () => log.push(`stop ${mine}`);
    }, doc);
    doc.set("hidden");
    doc.set("hidden");
    doc.set("visible");
    doc.set("visible");
    stop();
    doc.set("hidden");
    doc.set("visible");
    assert.deepEqual(log, ["start 1", "stop 1", "start 2", "stop 2"]);
    assert.equal(doc.listeners.size, 0);
  });

  test("a page opened in a hidden tab starts nothing until it is shown", () => {
    const doc = fakeDocument("hidden");
    let starts = 0;
    whenVisible(() => {
      starts++;
      return () => {};
    }, doc);
    assert.equal(starts, 0);
    doc.set("visible");
    assert.equal(starts, 1);
  });
});

describe("poll", () => {
  let clock;
  beforeEach(() => {
    clock = fakeClock();
    globalThis.document = fakeDocument("visible");
    globalThis.localStorage = fakeStorage();
  });
  afterEach(() => {
    clock.restore();
    delete globalThis.document;
    delete globalThis.localStorage;
  });

  test("no tick while the tab is hidden; one at once when it shows again", async () => {
    let ticks = 0;
    const stop = poll(() => {
      ticks++;
    }, 1000);
    await clock.advance(2500);
    assert.equal(ticks, 3); // 0, 1000, 2000
    globalThis.document.set("hidden");
    await clock.advance(10000);
    assert.equal(ticks, 3);
    globalThis.document.set("visible");
    await settle();
    assert.equal(ticks, 4, "a tick as soon as the tab shows");
    await clock.advance(1000);
    assert.equal(ticks, 5);
    stop();
    await clock.advance(5000);
    assert.equal(ticks, 5);
    assert.equal(globalThis.document.listeners.size, 0);
  });

  test("with proxns-poll=off it loads once and stops", async () => {
    globalThis.localStorage.setItem(POLL_KEY, "off");
    assert.equal(pollingDisabled(), true);
    let ticks = 0;
    poll(() => {
      ticks++;
    }, 1000);
    await clock.advance(10000);
    assert.equal(ticks, 1);
  });

  test("a tick returning false ends polling, as before", async () => {
    let ticks = 0;
    poll(() => ++ticks < 2, 1000);
    await clock.advance(10000);
    assert.equal(ticks, 2);
  });
});

describe("liveOrPoll", () => {
  let clock;
  beforeEach(() => {
    clock = fakeClock();
    globalThis.document = fakeDocument("visible");
    globalThis.localStorage = fakeStorage({ "proxns-token": "pxn_x" });
  });
  afterEach(() => {
    clock.restore();
    delete globalThis.document;
    delete globalThis.localStorage;
    delete globalThis.fetch;
  });

  test("refreshes once the stream opens, then only events; hidden: the stream is closed", async () => {
    const first = streamResponse();
    const second = streamResponse();
    const calls = fakeFetch([first, second]);
    let refreshes = 0;
    const epochs = [];
    const stop = liveOrPoll(
      { jobIds: [4] },
      { refresh: () => refreshes++, onEpoch: (e) => epochs.push(e.epoch), onJob: () => {}, onDeleted: () => {} },
      1000,
    );
    await settle();
    assert.equal(refreshes, 0, "not before the stream is registered");
    first.send(hello);
    await settle();
    assert.equal(refreshes, 1);
    first.send('event: epoch\ndata: {"job_id":4,"epoch":1}\n\n');
    await clock.advance(10000);
    assert.deepEqual(epochs, [1]);
    assert.equal(refreshes, 1, "no polling while the stream is open");
    globalThis.document.set("hidden");
    await clock.advance(60000);
    assert.equal(calls.length, 1, "no reconnect while hidden");
    globalThis.document.set("visible");
    await settle();
    assert.equal(calls.length, 2);
    second.send(hello);
    await settle();
    assert.equal(refreshes, 2, "back in the tab: reload what happened meanwhile");
    stop();
  });

  test("falls back to polling refresh when the stream cannot be opened; hidden: no polling", async () => {
    fakeFetch([streamResponse(500)]);
    let refreshes = 0;
    const stop = liveOrPoll({ experimentId: 1 }, { refresh: () => refreshes++ }, 1000);
    await settle();
    assert.equal(refreshes, 1, "the first poll tick at once");
    await clock.advance(3000);
    assert.equal(refreshes, 4);
    globalThis.document.set("hidden");
    await clock.advance(5000);
    assert.equal(refreshes, 4);
    stop();
  });
});
