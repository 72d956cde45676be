// Live overview: reload the counts fragment every few seconds (no framework, no build step).
(function () {
  "use strict";
  function start() {
    var live = document.getElementById("live");
    if (!live || !live.dataset.refreshUrl) return;
    var every = Math.max(1, parseInt(live.dataset.refreshSeconds, 10) || 5) * 1000;
    function tick() {
      if (document.hidden) return;
      fetch(live.dataset.refreshUrl, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html !== null) live.innerHTML = html; })
        .catch(function () { /* keep the last counts; the next tick tries again */ });
    }
    setInterval(tick, every);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
