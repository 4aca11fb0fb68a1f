// Keeps elements marked data-live="height" (and friends) current by
// polling the page's own JSON status; the pages work without it.
"use strict";
(function () {
  const live = document.querySelectorAll("[data-live]");
  if (live.length === 0) return;
  async function tick() {
    try {
      const r = await fetch("/api/status", { cache: "no-store" });
      if (!r.ok) return;
      const s = await r.json();
      for (const el of live) {
        const v = el.dataset.live.split(".").reduce((o, k) => (o == null ? o : o[k]), s);
        if (v != null) el.textContent = String(v);
      }
    } catch (_) {
      // The node is restarting or gone: keep the last figures.
    }
  }
  setInterval(tick, 2000);
})();
