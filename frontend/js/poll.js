// Polling: call `tick` now and every `intervalMs` until stopped or `tick` returns false.

export const POLL_MS = 1500;

export function poll(tick, intervalMs = POLL_MS) {
  let stopped = false;
  let timer = null;
  const run = async () => {
    if (stopped) return;
    let again = true;
    try {
      again = (await tick()) !== false;
    } catch (err) {
      console.warn("poll failed:", err.message); // keep polling: the server may be restarting
    }
    if (!stopped && again) timer = setTimeout(run, intervalMs);
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
