// Live updates: GET /api/events (server-sent events) read with fetch(), falling back to polling.
//
// Why fetch() and not EventSource: EventSource cannot send an Authorization header, and every /api
// route needs `Authorization: Bearer <token>` (a token in the address would end up in server logs
// and the browser's history). So the stream is read from fetch()'s body with a ReadableStream
// reader and a TextDecoder, and parsed here as the SSE specification says (event, data on several
// lines, id, retry, comments; lines ending in LF, CRLF or CR, split anywhere between chunks).

import { toSignIn } from "./api.js";
import { authHeader, getToken } from "./auth.js";
import { POLL_MS, poll, pollingDisabled } from "./poll.js";

export { pollingDisabled };

export const LIVE_KEY = "proxns-live";
export const EVENTS_PATH = "/api/events";
/** The wait before reconnecting until the server says otherwise (`retry:`); doubled per failure. */
export const RETRY_MS = 3000;
export const MAX_BACKOFF_MS = 30000;
/** No byte for this long (the server pings every 15 s): the connection is dead, reconnect. */
export const SILENCE_MS = 45000;

/**
 * A parser of an SSE byte stream already decoded to text: `push(text)` any chunk; each complete event
 * goes to `onEvent({event, data, id})` (`event` "message" when none was named), each comment line to
 * `onComment(text)`, each valid `retry:` to `onRetry(ms)`.
 */
export function sseParser({ onEvent, onComment = () => {}, onRetry = () => {} }) {
  let buffer = "";
  let first = true;
  let skipLF = false; // the chunk before ended in CR: an LF opening this one belongs to it
  let event = "";
  let data = [];
  let lastId = "";

  const dispatch = () => {
    if (data.length) onEvent({ event: event || "message", data: data.join("\n"), id: lastId });
    event = "";
    data = [];
  };
  const line = (text) => {
    if (text === "") return dispatch();
    if (text.startsWith(":")) return onComment(text.slice(1).replace(/^ /, ""));
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    const value = colon < 0 ? "" : text.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id" && !value.includes("\0")) lastId = value;
    else if (field === "retry" && /^\d+$/.test(value)) onRetry(Number(value));
  };
  return {
    push(text) {
      if (first && text) {
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        first = false;
      }
      if (skipLF && text) {
        if (text.startsWith("\n")) text = text.slice(1);
        skipLF = false;
      }
      buffer += text;
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const c = buffer[i];
        if (c !== "\n" && c !== "\r") continue;
        line(buffer.slice(start, i));
        if (c === "\r") {
          if (i + 1 === buffer.length) skipLF = true;
          else if (buffer[i + 1] === "\n") i++;
        }
        start = i + 1;
      }
      buffer = buffer.slice(start);
    },
    /** The id of the last event (`id:`), as EventSource keeps it. */
    get lastEventId() {
      return lastId;
    },
  };
}

/** The stream's address for a filter: `jobIds` (at most 100) or `experimentId`, or every job. */
export function eventsUrl({ jobIds, experimentId } = {}) {
  const params = new URLSearchParams();
  for (const id of jobIds || []) params.append("job_id", String(id));
  if (experimentId != null) params.set("experiment_id", String(experimentId));
  const query = params.toString();
  return query ? `${EVENTS_PATH}?${query}` : EVENTS_PATH;
}

function liveDisabled() {
  try {
    return globalThis.localStorage?.getItem(LIVE_KEY) === "off";
  } catch {
    return false;
  }
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    console.warn("live: an event that is not JSON was ignored");
    return undefined;
  }
}

/**
 * Follow jobs through GET /api/events: `onJob(job)`, `onEpoch({job_id, ...epoch})`, `onDeleted({job_id})`,
 * `onOpen(hello)` each time the stream (re)opens. A stream that drops is reopened after the server's
 * `retry` (3 s), doubled per failure in a row up to 30 s. `onFallback()` is called once, and the
 * subscription ends, when the stream cannot be had: an HTTP error other than 401, a network error twice
 * in a row, or `localStorage['proxns-live'] === 'off'`. A 401 opens the sign-in page. Returns stop().
 */
export function subscribe(filter = {}, handlers = {}) {
  const { onJob, onEpoch, onDeleted, onOpen, onFallback } = handlers;
  let stopped = false;
  let controller = null;
  let retryTimer = null;
  let silenceTimer = null;
  let retryMs = RETRY_MS;
  let failures = 0; // in a row, of any kind: sets the backoff
  let networkFailures = 0; // in a row: two give up

  const end = () => {
    stopped = true;
    clearTimeout(retryTimer);
    clearTimeout(silenceTimer);
    controller?.abort();
  };
  const fallBack = () => {
    if (stopped) return;
    end();
    onFallback?.();
  };
  const reconnect = () => {
    if (stopped) return;
    clearTimeout(silenceTimer);
    failures += 1;
    const wait = Math.min(retryMs * 2 ** (failures - 1), MAX_BACKOFF_MS);
    retryTimer = setTimeout(connect, wait);
  };
  const dispatch = ({ event, data }) => {
    if (stopped) return;
    const payload = parseJson(data);
    if (payload === undefined) return;
    if (event === "hello") {
      failures = 0;
      networkFailures = 0;
      onOpen?.(payload);
    } else if (event === "job") onJob?.(payload);
    else if (event === "epoch") onEpoch?.(payload);
    else if (event === "deleted") onDeleted?.(payload);
    // "dropped" (too slow a reader): the stream ends next, and is reopened like any drop
  };
  const watchSilence = () => {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(() => controller?.abort(), SILENCE_MS);
  };

  async function connect() {
    if (stopped) return;
    controller = new AbortController();
    const mine = controller;
    const headers = { Accept: "text/event-stream" };
    const auth = authHeader(getToken());
    if (auth) headers.Authorization = auth;
    let response;
    try {
      response = await fetch(eventsUrl(filter), { headers, signal: mine.signal, cache: "no-store" });
    } catch {
      if (stopped) return;
      networkFailures += 1;
      if (networkFailures >= 2) fallBack();
      else reconnect();
      return;
    }
    if (stopped) return;
    if (response.status === 401) {
      end();
      toSignIn();
      return;
    }
    if (!response.ok || !response.body) {
      fallBack();
      return;
    }
    networkFailures = 0;
    const parser = sseParser({
      onEvent: dispatch,
      onRetry: (ms) => {
        retryMs = ms;
      },
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    watchSilence();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (stopped) return;
        if (done) break;
        watchSilence();
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch {
      // aborted (stop, silence) or the connection broke: reopened below unless stopped
    }
    if (!stopped) reconnect();
  }

  if (liveDisabled()) {
    queueMicrotask(() => {
      if (!stopped) onFallback?.();
    });
    return end;
  }
  connect();
  return end;
}

/**
 * Run `start()` (which returns its stop function) while the tab is visible; stop it when the tab is
 * hidden and start it again when it shows. Returns stop(). `doc` is for tests.
 */
export function whenVisible(start, doc = globalThis.document) {
  let current = null;
  let stopped = false;
  const sync = () => {
    if (stopped) return;
    if (doc?.visibilityState === "hidden") {
      current?.();
      current = null;
    } else if (!current) {
      current = start() || (() => {});
    }
  };
  doc?.addEventListener?.("visibilitychange", sync);
  sync();
  return () => {
    stopped = true;
    doc?.removeEventListener?.("visibilitychange", sync);
    current?.();
    current = null;
  };
}

/**
 * A page's whole live part: follow `{jobIds, experimentId}` through the event stream (`onJob`,
 * `onEpoch`, `onDeleted`) and, when the stream cannot be had, poll `refresh` every `intervalMs`.
 * `refresh()` runs each time the stream opens (so once at the start; again after a reconnect or a
 * return to the tab, for what happened meanwhile) — after the stream is registered, so no change
 * falls between the page's load and the stream. Nothing runs while the tab is hidden. Returns stop().
 */
export function liveOrPoll(filter, { refresh, onJob, onEpoch, onDeleted }, intervalMs = POLL_MS) {
  const load = async () => {
    try {
      return await refresh();
    } catch (err) {
      console.warn("refresh failed:", err.message);
      return true;
    }
  };
  return whenVisible(() => {
    let stopPoll = null;
    const stopLive = subscribe(filter, {
      onOpen: load,
      onJob,
      onEpoch,
      onDeleted,
      onFallback: () => {
        stopPoll = poll(refresh, intervalMs);
      },
    });
    return () => {
      stopLive();
      stopPoll?.();
    };
  });
}
