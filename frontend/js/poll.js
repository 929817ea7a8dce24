// Polling: call `tick` now and every `intervalMs` until stopped or `tick` returns false. No tick runs
// while the tab is hidden: a tick that falls due then waits, and runs as soon as the tab shows again.

export const POLL_MS = 1500;
export const POLL_KEY = "proxns-poll";

/** True when `localStorage['proxns-poll'] === 'off'`: pages load once and then rely on the event
 *  stream alone (tests set it to prove the events path). */
export function pollingDisabled() {
  try {
    return globalThis.localStorage?.getItem(POLL_KEY) === "off";
  } catch {
    return false; // storage blocked (e.g. a sandboxed frame)
  }
}

function hidden(doc) {
  return doc?.visibilityState === "hidden";
}

export function poll(tick, intervalMs = POLL_MS) {
  const doc = globalThis.document;
  let stopped = false;
  let timer = null;
  let waiting = false; // a tick fell due while the tab was hidden
  const run = async () => {
    timer = null;
    if (stopped) return;
    if (hidden(doc)) {
      waiting = true;
      return;
    }
    let again = true;
    try {
      again = (await tick()) !== false;
    } catch (err) {
      console.warn("poll failed:", err.message); // keep polling: the server may be restarting
    }
    if (pollingDisabled()) again = false; // the first load only
    if (!stopped && again) timer = setTimeout(run, intervalMs);
    else stop();
  };
  const onVisibility = () => {
    if (waiting && !stopped && !hidden(doc)) {
      waiting = false;
      run();
    }
  };
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    doc?.removeEventListener?.("visibilitychange", onVisibility);
  };
  doc?.addEventListener?.("visibilitychange", onVisibility);
  run();
  return stop;
}
