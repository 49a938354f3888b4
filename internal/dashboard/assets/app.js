// ferry dashboard: polls /api/state every second and updates the page in
// place. No framework, no build step. Data from the server is only ever
// written with textContent, never as HTML.
"use strict";

(function () {
  const POLL_MS = 1000;
  const DLQ_MS = 3000;
  const TOKEN_KEY = "ferry-token";
  const cards = new Map(); // job id -> {root, els, lastDLQ}
  let token = sessionStorage.getItem(TOKEN_KEY) || "";

  // A token passed as #token=... in the URL (never sent to the server) is
  // kept for this tab and removed from the address bar.
  const m = location.hash.match(/token=([0-9A-Za-z]+)/);
  if (m) {
    token = m[1];
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", location.pathname);
  }

  const $ = (id) => document.getElementById(id);

  function headers(extra) {
    const h = Object.assign({ "Accept": "application/json" }, extra || {});
    if (token) h["X-Ferry-Token"] = token;
    return h;
  }

  async function api(method, path) {
    const r = await fetch(path, { method: method, headers: headers(method === "POST" ? { "Content-Type": "application/json" } : null), cache: "no-store", credentials: "omit" });
    let body = {};
    try { body = await r.json(); } catch (e) { body = {}; }
    if (r.status === 403) showTokenForm();
    if (!r.ok) throw new Error(body.error || (r.status + " " + r.statusText));
    return body;
  }

  function showTokenForm() { $("tokenform").hidden = false; }

  $("tokenform").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    $("tokenform").hidden = true;
    poll();
  });

  function notice(text) {
    const n = $("notice");
    n.textContent = text;
    n.hidden = !text;
  }

  // Formatting.
  const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  function bytes(n) {
    let i = 0;
    n = Number(n) || 0;
    while (n >= 1024 && i < UNITS.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + UNITS[i];
  }
  function num(n) { return (Number(n) || 0).toLocaleString("en-US"); }
  function rate(n) { n = Number(n) || 0; return n >= 100 ? n.toFixed(0) : n.toFixed(1); }
  function dur(s) {
    if (s === null || s === undefined) return "–";
    s = Math.max(0, Math.round(s));
    const h = Math.floor(s / 3600), mi = Math.floor((s % 3600) / 60), se = s % 60;
    if (h > 0) return h + "h" + String(mi).padStart(2, "0") + "m";
    if (mi > 0) return mi + "m" + String(se).padStart(2, "0") + "s";
    return se + "s";
  }
  function pct(a, b) { return b > 0 ? Math.min(100, (100 * a) / b) : 0; }

  function setText(el, text, value) {
    if (el.textContent !== text) el.textContent = text;
    if (value !== undefined) el.dataset.value = String(value);
  }
  function setBar(el, p, complete) {
    el.style.width = p.toFixed(1) + "%";
    el.classList.toggle("complete", !!complete);
    el.dataset.value = p.toFixed(1);
  }

  function newCard(id) {
    const frag = $("jobtpl").content.cloneNode(true);
    const root = frag.querySelector("article");
    root.dataset.job = id;
    const els = {};
    root.querySelectorAll("[data-k]").forEach((e) => { els[e.dataset.k] = e; });
    root.querySelectorAll("button[data-act]").forEach((b) => {
      b.addEventListener("click", () => act(id, b.dataset.act, b));
    });
    els.details.addEventListener("toggle", () => { if (els.details.open) loadDLQ(id, true); });
    $("jobs").appendChild(root);
    const c = { root: root, els: els, lastDLQ: 0, job: null };
    cards.set(id, c);
    return c;
  }

  async function act(id, action, button) {
    if (action === "cancel" && !confirm("Cancel job " + id + "? Its queued work is dropped.")) return;
    if (!token) {
      showTokenForm();
      notice("Actions need the token printed when the dashboard started.");
      return;
    }
    button.disabled = true;
    try {
      const r = await api("POST", "/api/jobs/" + encodeURIComponent(id) + "/" + action);
      notice(r.message || "");
      if (action === "redrive") loadDLQ(id, true);
      poll();
    } catch (e) {
      notice(action + " " + id + ": " + e.message);
    } finally {
      button.disabled = false;
    }
  }

  function updateCard(c, j) {
    const e = c.els, k = j.counters;
    c.job = j;
    c.root.dataset.status = j.status;
    setText(e.id, j.id);
    setText(e.status, j.status);
    e.status.className = "status " + j.status;
    setText(e.cmd, "ferry " + j.command + " " + j.source + " → " + j.destination);
    setText(e.message, j.error || j.message || "");
    e.message.classList.toggle("err", !!j.error);

    const finished = ["done", "failed", "cancelled"].includes(j.status);
    c.root.querySelector('[data-act="pause"]').hidden = j.status !== "running";
    c.root.querySelector('[data-act="resume"]').hidden = !(j.status === "paused" || j.status === "interrupted");
    c.root.querySelector('[data-act="cancel"]').hidden = finished;
    c.root.querySelector('[data-act="redrive"]').hidden = j.status === "cancelled";

    const tasks = k.listing_tasks_done + k.listing_tasks_open + k.listing_tasks_pending;
    setBar(e.listbar, j.listing_complete ? 100 : pct(k.listing_tasks_done, tasks), j.listing_complete);
    setText(e.listtxt, (j.listing_complete ? "complete: " : "listing: ") + num(k.objects_listed) + " objects (" + bytes(k.bytes_listed) + "), " +
      num(k.listing_tasks_done) + "/" + num(tasks) + " tasks" + (k.listing_tasks_failed ? ", " + num(k.listing_tasks_failed) + " failed" : ""));
    setBar(e.objbar, pct(k.objects_finished, k.objects_enqueued), j.listing_complete && k.objects_finished >= k.objects_enqueued);
    setText(e.objtxt, num(k.objects_finished) + "/" + num(k.objects_enqueued) + " queued objects finished", k.objects_finished);
    setBar(e.bytebar, pct(k.bytes_copied, k.bytes_enqueued), j.listing_complete && k.bytes_copied >= k.bytes_enqueued);
    setText(e.bytetxt, bytes(k.bytes_copied) + " / " + bytes(k.bytes_enqueued) + " copied", k.bytes_copied);

    setText(e.copied, num(k.objects_copied), k.objects_copied);
    setText(e.skipped, num(k.objects_skipped), k.objects_skipped);
    const failed = k.objects_failed + k.objects_skipped_unsafe + k.listing_tasks_failed + k.deletes_failed;
    setText(e.failed, num(failed), failed);
    e.failed.classList.toggle("err", failed > 0);
    setText(e.orate, rate(j.objects_per_second), j.objects_per_second);
    setText(e.brate, bytes(j.bytes_per_second) + "/s", j.bytes_per_second);
    let eta = "–";
    if (j.status === "running" && !j.listing_complete) eta = "listing…";
    else if (j.eta_seconds !== null && j.eta_seconds !== undefined) eta = dur(j.eta_seconds);
    setText(e.eta, eta);
    setText(e.elapsed, dur(j.duration_seconds));
    setText(e.failsum, failed > 0 ? "(" + num(failed) + ")" : "");

    chart(e.ochart, j.history, "objects_per_second", rate);
    chart(e.bchart, j.history, "bytes_per_second", (v) => bytes(v) + "/s");

    if (e.details.open && Date.now() - c.lastDLQ > DLQ_MS) loadDLQ(j.id, false);
  }

  async function loadDLQ(id, force) {
    const c = cards.get(id);
    if (!c || (!force && Date.now() - c.lastDLQ < DLQ_MS)) return;
    c.lastDLQ = Date.now();
    const rows = [];
    let note = "";
    try {
      const r = await api("GET", "/api/jobs/" + encodeURIComponent(id) + "/dlq");
      r.entries.forEach((d) => rows.push([d.kind, d.key || d.listing || "", String(d.attempts), d.error]));
      note = num(r.entries.length) + (r.truncated ? "+" : "") + " dead-letter entries";
    } catch (e) {
      note = "dead-letter queue: " + e.message;
    }
    const j = c.job || {};
    (j.skipped_unsafe || []).forEach((u) => rows.push(["unsafe", u.key, "", u.error]));
    (j.gaps || []).forEach((g) => rows.push(["gap", g.key, "", g.error]));
    setText(c.els.dlqnote, note);
    const tb = c.els.failrows;
    tb.replaceChildren();
    rows.forEach((row) => {
      const tr = document.createElement("tr");
      row.forEach((v, i) => {
        const td = document.createElement("td");
        td.textContent = v;
        if (i === 1) td.className = "key";
        if (i === 3) td.className = "err";
        tr.appendChild(td);
      });
      tb.appendChild(tr);
    });
  }

  // chart draws one rate over time as a line on a canvas.
  function chart(cv, hist, field, fmt) {
    const dpr = window.devicePixelRatio || 1;
    const w = cv.clientWidth || 480, h = cv.clientHeight || 110;
    if (cv.width !== Math.round(w * dpr)) { cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr); }
    const g = cv.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const pts = hist || [];
    const pad = { l: 4, r: 4, t: 16, b: 14 };
    let max = 0;
    pts.forEach((p) => { max = Math.max(max, p[field]); });
    g.font = "10px system-ui, sans-serif";
    g.fillStyle = "#6b7385";
    g.fillText("max " + fmt(max), pad.l + 2, 11);
    if (pts.length < 2) {
      g.fillText("waiting for samples…", pad.l + 2, h - 4);
      return;
    }
    const t0 = pts[0].t, t1 = pts[pts.length - 1].t, span = Math.max(1, t1 - t0);
    g.fillText(dur(span) + " ago", pad.l + 2, h - 3);
    const x = (t) => pad.l + ((t - t0) / span) * (w - pad.l - pad.r);
    const y = (v) => h - pad.b - (max > 0 ? (v / max) * (h - pad.t - pad.b) : 0);
    g.strokeStyle = "#dde1e8";
    g.beginPath(); g.moveTo(pad.l, h - pad.b + 0.5); g.lineTo(w - pad.r, h - pad.b + 0.5); g.stroke();
    g.beginPath();
    pts.forEach((p, i) => { if (i === 0) g.moveTo(x(p.t), y(p[field])); else g.lineTo(x(p.t), y(p[field])); });
    g.strokeStyle = "#2463d1";
    g.lineWidth = 1.5;
    g.stroke();
    g.lineTo(x(t1), h - pad.b); g.lineTo(x(t0), h - pad.b); g.closePath();
    g.fillStyle = "rgba(36,99,209,0.12)";
    g.fill();
  }

  function updateWorkers(ws) {
    const tb = $("workers").querySelector("tbody");
    tb.replaceChildren();
    const known = Array.isArray(ws);
    $("workers").hidden = !known || ws.length === 0;
    $("noworkers").hidden = known && ws.length > 0;
    if (!known) { $("noworkers").textContent = "This dashboard cannot see the workers (the job runs in another process on a locked state directory)."; return; }
    const now = Date.now();
    ws.forEach((w) => {
      const tr = document.createElement("tr");
      tr.dataset.worker = w.name;
      if (w.idle) tr.className = "idle";
      const ago = (now - Date.parse(w.last_seen)) / 1000;
      [w.name, w.idle ? "idle" : "active", dur(ago) + " ago", rate(w.objects_per_second), bytes(w.bytes_per_second) + "/s",
        num(w.objects), bytes(w.bytes), num(w.failed), (w.jobs || []).join(", ")].forEach((v) => {
        const td = document.createElement("td");
        td.textContent = v;
        tr.appendChild(td);
      });
      tb.appendChild(tr);
    });
  }

  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
    const conn = $("conn");
    try {
      const s = await api("GET", "/api/state");
      conn.textContent = s.error ? "error: " + s.error : "live · " + new Date(s.now).toLocaleTimeString();
      conn.classList.toggle("bad", !!s.error);
      const seen = new Set();
      const list = $("jobs");
      s.jobs.slice().reverse().forEach((j, i) => { // newest first
        seen.add(j.id);
        const c = cards.get(j.id) || newCard(j.id);
        updateCard(c, j);
        if (list.children[i] !== c.root) list.insertBefore(c.root, list.children[i] || null);
      });
      cards.forEach((c, id) => { if (!seen.has(id)) { c.root.remove(); cards.delete(id); } });
      $("nojobs").hidden = s.jobs.length > 0;
      updateWorkers(s.workers);
    } catch (e) {
      conn.textContent = "disconnected: " + e.message;
      conn.classList.add("bad");
    } finally {
      polling = false;
    }
  }

  poll();
  setInterval(poll, POLL_MS);
})();
