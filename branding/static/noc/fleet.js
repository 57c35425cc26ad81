// The fleet grid, live: rows replaced as the server's stream reports them changed.
(function () {
  "use strict";
  var table = document.getElementById("fleet");
  if (!table || !window.EventSource) return;
  var body = document.getElementById("rows");
  var live = document.getElementById("live");

  function ago(iso) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 90) return s + "s ago";
    if (s < 5400) return Math.floor(s / 60) + " min ago";
    if (s < 172800) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }
  function tick() {
    var times = table.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) times[i].textContent = ago(times[i].getAttribute("datetime"));
  }
  function summary(data) {
    Object.keys(data.counts || {}).forEach(function (status) {
      var tile = document.querySelector('[data-count="' + status + '"] strong');
      if (tile) tile.textContent = data.counts[status];
    });
    var total = document.getElementById("total");
    if (total && typeof data.total === "number") total.textContent = data.total;
    live.textContent = "live · updated " + new Date(data.at).toLocaleTimeString();
  }
  function flash(row) {
    row.classList.add("flash");
    setTimeout(function () { row.classList.remove("flash"); }, 50);
  }
  function parseRow(html) {
    var holder = document.createElement("tbody");
    holder.innerHTML = html;
    return holder.firstElementChild;
  }

  var source = new EventSource(table.getAttribute("data-stream"));
  source.onopen = function () { live.className = "live on"; live.textContent = "live"; };
  source.onerror = function () { live.className = "live off"; live.textContent = "reconnecting…"; };
  source.addEventListener("page", function (e) {
    var data = JSON.parse(e.data);
    body.innerHTML = data.html || '<tr class="empty"><td colspan="9">No tenant matches these filters.</td></tr>';
    summary(data);
    tick();
  });
  source.addEventListener("rows", function (e) {
    var data = JSON.parse(e.data);
    (data.rows || []).forEach(function (item) {
      var old = body.querySelector('tr[data-tenant-id="' + item.id + '"]');
      var row = parseRow(item.html);
      if (old && row) { old.replaceWith(row); flash(row); }
    });
    summary(data);
    tick();
  });
  source.addEventListener("expired", function () {
    source.close();
    window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
  });
  setInterval(tick, 1000);
})();
