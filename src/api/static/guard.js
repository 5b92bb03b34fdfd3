// The guard post: live alert feed (server-sent events), gate counts, camera health.
(function () {
  const $ = (id) => document.getElementById(id);
  const RANK = { info: 0, warning: 1, alert: 2 };
  const MAX_ITEMS = 200;
  const items = new Map(); // event id -> { event, ack, node }
  const cams = new Map(); // camera id -> camera from /api/cameras
  let lines = []; // from /api/counts
  let gateInside = null; // from /api/gate/inside: guests and newcomers inside (the gate book)
  let showAll = false;
  let audio = null;
  let soundOn = store("ronda.sound") !== "off";
  let source = null;


  // ---- times: events carry the site's local time with its offset
  function offsetMs(iso) {
    const m = /([+-])(\d\d):(\d\d)$/.exec(iso || "");
    if (!m) return 0;
    const v = (Number(m[2]) * 60 + Number(m[3])) * 60000;
    return m[1] === "-" ? -v : v;
  }
  function when(iso) {
    if (!iso || iso.length < 19) return "";
    const today = new Date(Date.now() + offsetMs(iso)).toISOString().slice(0, 10);
    const time = iso.slice(11, 19);
    return iso.slice(0, 10) === today ? time : iso.slice(8, 10) + "/" + iso.slice(5, 7) + " " + time;
  }

  // ---- sound
  function unlockAudio() {
    try {
      if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
    } catch (e) { audio = null; }
    $("sound-hint").hidden = true;
  }
  function beep() {
    if (!soundOn) return;
    try {
      if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") {
        audio.resume();
        $("sound-hint").hidden = false;
      }
      const t0 = audio.currentTime + 0.01;
      for (const d of [0, 0.25, 0.5]) {
        const o = audio.createOscillator();
        const g = audio.createGain();
        o.type = "square";
        o.frequency.value = d === 0.25 ? 660 : 880;
        g.gain.setValueAtTime(0.0001, t0 + d);
        g.gain.exponentialRampToValueAtTime(0.25, t0 + d + 0.01);
        g.gain.exponentialRampToValueAtTime(0.0001, t0 + d + 0.2);
        o.connect(g);
        g.connect(audio.destination);
        o.start(t0 + d);
        o.stop(t0 + d + 0.22);
      }
    } catch (e) { /* no audio on this device */ }
  }
  function renderSound() {
    $("sound").textContent = t(soundOn ? "sound_on" : "sound_off");
    $("sound").setAttribute("aria-pressed", soundOn ? "true" : "false");
  }

  // ---- the feed
  function cameraName(id) {
    const c = cams.get(id);
    return c && c.name ? c.name : id;
  }
  function describe(e) {
    const parts = [cameraName(e.camera)];
    if (e.line) parts.push(t("line") + " " + e.line);
    if (e.direction) parts.push(t("dir_" + e.direction));
    if (e.zone) parts.push(t("zone") + " " + e.zone);
    return parts.join(" · ");
  }
  function ackText(a) {
    return t("acked_by", { user: a.user, time: when(a.at) });
  }
  function build(item) {
    const e = item.event;
    const sev = RANK[e.severity] === undefined ? "info" : e.severity;
    const li = el("li", "item sev-" + sev + (item.ack ? " acked" : ""));
    li.dataset.id = e.id;
    li.dataset.type = e.type;
    li.appendChild(el("div", "sev", t(sev)));
    const body = el("div", "body");
    body.appendChild(el("div", "what", t(e.type)));
    body.appendChild(el("div", "where", describe(e)));
    body.appendChild(el("div", "when", when(e.time)));
    const info = el("div", "ackinfo", item.ack ? ackText(item.ack) : "");
    body.appendChild(info);
    li.appendChild(body);
    if (typeof e.snapshot === "string" && e.snapshot.startsWith("/api/") && RANK[sev] >= 1) {
      const img = el("img", "snap");
      img.alt = "";
      img.loading = "lazy";
      img.addEventListener("error", () => img.remove());
      img.src = e.snapshot;
      li.appendChild(img);
    }
    if (e.type === "unrecorded_entry") {
      // the guard records the person in the gate book: the entry's form opens there
      const a = el("a", "ack record", t("record_now"));
      a.href = "/gatebook#alert=" + encodeURIComponent(e.id);
      li.appendChild(a);
    }
    if (RANK[sev] >= 1 && !item.ack) {
      const b = el("button", "ack", t("ack"));
      b.type = "button";
      b.addEventListener("click", () => acknowledge(e.id, b, info));
      li.appendChild(b);
    }
    return li;
  }
  function place(item) {
    const list = $("feed");
    const node = build(item);
    if (item.node) {
      list.replaceChild(node, item.node);
    } else {
      let before = null;
      for (const child of list.children) {
        if (child.dataset.id < item.event.id) { before = child; break; }
      }
      list.insertBefore(node, before);
    }
    item.node = node;
    while (items.size > MAX_ITEMS) {
      const last = list.lastElementChild;
      if (!last) break;
      items.delete(last.dataset.id);
      last.remove();
    }
    updateEmpty();
  }
  function updateEmpty() {
    const visible = [...items.values()].some((i) => showAll || RANK[i.event.severity] >= 1);
    $("empty").hidden = visible;
  }
  function add(event, ack, fresh) {
    const known = items.get(event.id);
    if (known) {
      if (ack && !known.ack) {
        known.ack = ack;
        place(known);
      }
      return;
    }
    const item = { event, ack, node: null };
    items.set(event.id, item);
    place(item);
    if (fresh && event.severity === "alert" && !ack) beep();
  }
  function markAck(a) {
    const item = items.get(a.event_id);
    if (item && !item.ack) {
      item.ack = a;
      place(item);
    }
  }
  async function acknowledge(id, button, info) {
    button.disabled = true;
    try {
      const r = await api("/api/events/" + encodeURIComponent(id) + "/ack", { method: "POST" });
      const body = await r.json().catch(() => ({}));
      if (r.ok) markAck(body);
      else {
        info.textContent = t("ack_failed", { error: body.error || r.status });
        button.disabled = false;
      }
    } catch (e) {
      info.textContent = t("offline");
      button.disabled = false;
    }
  }
  async function loadRecent() {
    try {
      const r = await api("/api/events?limit=100&min_severity=" + (showAll ? "info" : "warning"));
      if (!r.ok) return;
      const list = await r.json();
      for (const i of list.reverse()) add(i.event, i.ack, false);
    } catch (e) { /* the stream's reconnect tries again */ }
  }

  // ---- counts
  function renderCounts() {
    const gate = lines.filter((l) => l.gate);
    const shown = gate.length ? gate : lines;
    const sum = (k) => shown.reduce((s, l) => s + l[k], 0);
    $("total-in").textContent = shown.length ? sum("in") : "–";
    $("total-out").textContent = shown.length ? sum("out") : "–";
    // "Di dalam": the guests and newcomers the gate book has inside; without the gate book the
    // raw count, never below zero (the day starts with people already inside)
    if (gateInside !== null) {
      $("total-occ").textContent = gateInside;
      $("occ-hint").textContent = t("inside_hint");
    } else {
      $("total-occ").textContent = shown.length ? Math.max(0, sum("occupancy")) : "–";
      $("occ-hint").textContent = "";
    }
    const ul = $("lines");
    ul.textContent = "";
    if (lines.length < 2) return;
    for (const l of lines) {
      const li = el("li", "line" + (l.gate ? " gate" : ""));
      li.dataset.camera = l.camera;
      li.dataset.line = l.line;
      li.appendChild(el("span", "lname", cameraName(l.camera) + " · " + l.line));
      li.appendChild(el("span", "lnum", t("in") + " " + l.in + " · " + t("out") + " " + l.out + " · " + t("inside") + " " + l.occupancy));
      ul.appendChild(li);
    }
  }
  async function refreshCounts() {
    try {
      const r = await api("/api/counts");
      if (r.ok) {
        lines = (await r.json()).lines;
        renderCounts();
      }
    } catch (e) { /* next time */ }
    refreshInside();
  }
  async function refreshInside() {
    try {
      const r = await api("/api/gate/inside");
      gateInside = r.ok ? (await r.json()).inside : null;
      renderCounts();
    } catch (e) { /* next time */ }
  }
  function countsFromEvent(e) {
    if (!e.counts || !e.line) return;
    const l = lines.find((x) => x.camera === e.camera && x.line === e.line);
    if (!l) {
      refreshCounts();
      return;
    }
    l.in = e.counts.in;
    l.out = e.counts.out;
    l.occupancy = e.counts.occupancy;
    renderCounts();
    refreshInside();
  }

  // ---- cameras
  function renderCameras() {
    const ul = $("cameras");
    ul.textContent = "";
    let online = 0;
    for (const c of cams.values()) {
      if (c.state === "online") online += 1;
      const li = el("li", "cam " + c.state);
      li.dataset.camera = c.id;
      li.appendChild(el("span", "cname", c.name || c.id));
      li.appendChild(el("span", "cstate", t(c.state === "offline" ? "offline_state" : c.state)));
      const fps = c.state === "online" ? c.delivered_fps.toFixed(1) + " fps" : (c.since ? t("since", { time: when(c.since) }) : "");
      li.appendChild(el("span", "cfps", fps));
      if (c.low_light) li.appendChild(el("span", "cnight", t("night_mode")));
      if (c.noisy) li.appendChild(el("span", "cnight", t("noisy_view")));
      ul.appendChild(li);
    }
    $("cams-summary").textContent = cams.size ? t("active", { n: online, m: cams.size }) : "";
  }
  async function refreshCameras() {
    try {
      const r = await api("/api/cameras");
      if (!r.ok) return;
      // read first, then swap: an alert arriving while the list is read must still find its
      // camera's name (it did not, when the map was cleared before the read)
      const list = await r.json();
      cams.clear();
      for (const c of list) cams.set(c.id, c);
      renderCameras();
    } catch (e) { /* next time */ }
  }

  // ---- the live stream
  function onEvent(e) {
    add(e, null, true);
    countsFromEvent(e);
    if (e.type === "camera_offline" || e.type === "camera_online") refreshCameras();
  }
  function connect() {
    source = new EventSource("/api/events/stream");
    source.addEventListener("ready", () => {
      $("conn").hidden = true;
      loadRecent();
      refreshCounts();
      refreshCameras();
    });
    source.addEventListener("event", (m) => {
      try { onEvent(JSON.parse(m.data)); } catch (e) { /* not ours */ }
    });
    source.addEventListener("ack", (m) => {
      try { markAck(JSON.parse(m.data)); } catch (e) { /* not ours */ }
    });
    source.addEventListener("lagged", () => {
      loadRecent();
      refreshCounts();
    });
    source.onerror = () => {
      $("conn").hidden = false;
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(async () => {
          try {
            await api("/api/me");
          } catch (e) {
            if (e.message === "logged out") return;
          }
          connect();
        }, 3000);
      }
    };
  }

  // ---- start
  async function start() {
    try {
      const r = await api("/api/me");
      const me = await r.json();
      $("user").textContent = me.name;
      // an admin's home is this page: the other pages are one tap away
      $("to-admin").hidden = me.role !== "admin";
      $("to-review").hidden = me.role !== "admin";
    } catch (e) {
      return;
    }
    $("zone").textContent = SITE.zone || "";
    const tick = () => { $("clock").textContent = siteClock(); };
    tick();
    setInterval(tick, 1000);
    $("sound-hint").hidden = !soundOn;
    renderSound();
    document.addEventListener("click", unlockAudio, { once: true });
    document.addEventListener("touchstart", unlockAudio, { once: true });
    $("sound").addEventListener("click", () => {
      soundOn = !soundOn;
      store("ronda.sound", soundOn ? "on" : "off");
      renderSound();
      if (soundOn) unlockAudio();
    });
    $("show-all").addEventListener("change", (ev) => {
      showAll = ev.target.checked;
      $("feed").classList.toggle("only-alerts", !showAll);
      updateEmpty();
      if (showAll) loadRecent();
    });
    $("logout").addEventListener("click", async () => {
      try { await fetch("/api/logout", { method: "POST", credentials: "same-origin" }); } catch (e) { /* go anyway */ }
      location.assign("/login");
    });
    langListeners.push(() => {
      renderSound();
      for (const i of items.values()) place(i);
      renderCounts();
      renderCameras();
    });
    updateEmpty();
    await refreshCameras();
    refreshCounts();
    connect();
    setInterval(refreshCameras, 10000);
    setInterval(refreshCounts, 60000);
  }
  start();
})();
