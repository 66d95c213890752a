// Small progressive enhancement: every page works without it (forms post, links navigate).
"use strict";
(function () {
  function human(bytes) {
    if (bytes == null) return "—";
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
    return (i ? bytes.toFixed(1) : bytes.toFixed(0)) + " " + units[i];
  }
  function duration(s) {
    if (s == null) return "";
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60);
    return m < 60 ? m + " min " + (s % 60) + " s" : Math.floor(m / 60) + " h " + (m % 60) + " min";
  }
  // Confirmation of destructive forms.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) { if (!window.confirm(form.dataset.confirm)) e.preventDefault(); });
  });
  document.querySelectorAll("form[data-confirm-actions]").forEach(function (form) {
    var risky = form.dataset.confirmActions.split(" ");
    form.addEventListener("submit", function (e) {
      var action = e.submitter && e.submitter.value;
      if (risky.indexOf(action) >= 0) {
        var n = form.querySelectorAll("input[name=instance]:checked").length;
        if (!window.confirm(action.charAt(0).toUpperCase() + action.slice(1) + " " + n + " instance(s)?")) e.preventDefault();
      }
    });
  });
  // Select all.
  document.querySelectorAll("[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      document.querySelectorAll("input[name=" + box.dataset.selectAll + "]").forEach(function (b) { b.checked = box.checked; });
    });
  });
  // Fields shown for one choice of a radio group (data-show-when="name=value").
  var dependent = document.querySelectorAll("[data-show-when]");
  function refresh() {
    dependent.forEach(function (el) {
      var parts = el.dataset.showWhen.split("="), chosen = document.querySelector("input[name=" + parts[0] + "]:checked");
      el.hidden = !chosen || chosen.value !== parts[1];
    });
  }
  document.querySelectorAll("input[type=radio]").forEach(function (r) { r.addEventListener("change", refresh); });
  refresh();
  // Versions offered for the chosen image only.
  var image = document.querySelector("select[name=image]"), version = document.querySelector("select[name=version]");
  function versions() {
    if (!image || !version) return;
    version.querySelectorAll("option[data-image]").forEach(function (o) {
      o.hidden = o.dataset.image !== image.value;
      if (o.hidden && o.selected) version.value = "latest";
    });
  }
  if (image) { image.addEventListener("change", versions); versions(); }
  // Live download progress: bytes, percent, speed, time left, polled from the server (the download runs there).
  var table = document.querySelector("[data-live-downloads]");
  if (table) {
    var poll = function () {
      fetch(table.dataset.liveDownloads, { credentials: "same-origin" }).then(function (r) {
        if (r.status === 401) { window.location.reload(); return null; }
        return r.json();
      }).then(function (list) {
        if (!list) return;
        var busy = false, seen = {};
        list.forEach(function (d) {
          seen[d.name] = true;
          var row = table.querySelector("tr[data-download='" + d.name + "']");
          if (!row) { busy = true; return; }
          var bar = row.querySelector("progress"), text = row.querySelector("[data-progress-text]"), state = row.querySelector("[data-state] span");
          if (bar && d.percent != null) bar.value = d.percent;
          if (state) { state.textContent = d.state; state.className = "state " + (d.state || "").toLowerCase(); }
          if (text) {
            if (d.state === "Downloading") {
              busy = true;
              text.textContent = (d.percent != null ? d.percent + " % · " : "") + human(d.bytesDone) + " of " + human(d.totalBytes) +
                (d.speed ? " · " + human(d.speed) + "/s" : "") + (d.eta != null ? " · " + duration(d.eta) + " left" : "");
            } else if (d.error) { text.textContent = d.error; } else { text.textContent = ""; }
          }
          if (row.dataset.lastState === "Downloading" && d.state !== "Downloading") busy = true;
          row.dataset.lastState = d.state;
        });
        if (busy) setTimeout(poll, 1000); else if (table.dataset.wasBusy) window.location.reload();
        table.dataset.wasBusy = busy ? "1" : "";
      }).catch(function () { setTimeout(poll, 3000); });
    };
    poll();
  }
  // A scale set converging: its state and instance count, until it settles.
  var live = document.querySelector("[data-live]");
  if (live && /ing$/.test(live.textContent.trim())) {
    var check = function () {
      fetch(live.dataset.live, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (s) {
        live.textContent = s.provisioningState + " · " + s.ready + " of " + s.capacity + " instances ready";
        if (/ing$/.test(s.provisioningState)) setTimeout(check, 1000); else window.location.reload();
      }).catch(function () { setTimeout(check, 3000); });
    };
    check();
  }
  // A template file read into the template box (no upload: the server gets the same JSON as a pasted one).
  document.querySelectorAll("input[type=file][data-fill]").forEach(function (input) {
    input.addEventListener("change", function () {
      var file = input.files && input.files[0], box = document.querySelector("textarea[name=" + input.dataset.fill + "]");
      if (!file || !box) return;
      file.text().then(function (text) { box.value = text; });
    });
  });
  // A page that settles by itself (a running deployment): reloaded until it has.
  var refresh = document.querySelector("[data-refresh]");
  if (refresh) setTimeout(function () { window.location.reload(); }, 1000 * Number(refresh.dataset.refresh));
  // The guided replacement of older instances: its step, until it ends.
  var guided = document.querySelector("[data-guided]");
  if (guided) {
    var step = guided.querySelector("[data-guided-step]");
    var follow = function () {
      fetch(guided.dataset.guided, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (s) {
        if (!s.guided) return;
        step.textContent = s.guided.step;
        if (s.guided.done) window.location.reload(); else setTimeout(follow, 1000);
      }).catch(function () { setTimeout(follow, 3000); });
    };
    follow();
  }
})();
