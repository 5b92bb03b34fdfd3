// The city's command room: the villages with their state, the alert feed of all villages
// (polled every 2 s from /api/events?after=...), a village's drill-down, its clips through
// the hub. Bahasa Indonesia first; English as the switch.
(function () {
  Object.assign(DICT.id, {
    command_room: "Ruang pantau kota", villages: "Desa", alerts_all: "Peringatan semua desa",
    broker_down: "Hub tidak tersambung ke broker kota; data bisa tertinggal.",
    no_villages: "Belum ada desa.", unknown_village: "desa tak dikenal",
    open_alerts: "{n} siaga hari ini", no_open_alerts: "tidak ada siaga hari ini",
    cams_state: "kamera {up}/{n} aktif", cams_down: "{n} kamera mati",
    counts: "masuk {in} · keluar {out}", counts_today: "Hitungan hari ini",
    recent: "Kejadian terbaru", clip: "Rekaman", close: "Tutup",
    avail_online: "Aktif", avail_offline: "Terputus", avail_none: "Belum terdengar",
    district: "Kecamatan {d}", no_events: "Belum ada kejadian.", no_cameras: "Belum ada kamera.",
  });
  Object.assign(DICT.en, {
    command_room: "City command room", villages: "Villages", alerts_all: "Alerts of all villages",
    broker_down: "The hub is not connected to the city broker; data may lag.",
    no_villages: "No villages yet.", unknown_village: "unknown village",
    open_alerts: "{n} alert(s) today", no_open_alerts: "no alerts today",
    cams_state: "cameras {up}/{n} online", cams_down: "{n} camera(s) down",
    counts: "in {in} · out {out}", counts_today: "Counts today",
    recent: "Recent events", clip: "Clip", close: "Close",
    avail_online: "Online", avail_offline: "Offline", avail_none: "Not heard yet",
    district: "District {d}", no_events: "No events yet.", no_cameras: "No cameras yet.",
  });
  const $ = (id) => document.getElementById(id);
  let villages = [];
  let selected = null;
  let last = null; // the feed's position (seq)
  const feedItems = []; // newest first
  const FEED_MAX = 200;

  function villageName(site) {
    const v = villages.find((x) => x.site === site);
    return (v && v.name) || site;
  }
  function when(time) {
    return typeof time === "string" && time.length >= 19 ? time.slice(0, 10) + " " + time.slice(11, 19) : "";
  }

  function eventItem(e) {
    const li = el("li", "item sev-" + (e.severity || "info"));
    li.dataset.id = e.id;
    li.dataset.site = e.site;
    li.appendChild(el("span", "sev", t(e.severity || "info")));
    const body = el("div", "body");
    body.appendChild(el("div", "what", t(e.type)));
    body.appendChild(el("div", "where", villageName(e.site) + " · " + e.camera));
    body.appendChild(el("div", "when", when(e.time)));
    li.appendChild(body);
    if (e.clip) {
      const a = el("a", "clip", t("clip"));
      a.href = e.clip;
      a.addEventListener("click", (ev) => { ev.preventDefault(); play(e); });
      li.appendChild(a);
    }
    return li;
  }

  function play(e) {
    $("player-sec").hidden = false;
    $("player-title").textContent = t("clip") + " · " + villageName(e.site) + " · " + t(e.type);
    $("player").src = e.clip;
    $("player").play().catch(() => { /* the user presses play */ });
  }

  function renderFeed() {
    const ol = $("feed");
    ol.replaceChildren(...feedItems.map(eventItem));
    $("empty").hidden = feedItems.length > 0;
  }

  function renderVillages() {
    const ul = $("villages");
    ul.replaceChildren(...villages.map((v) => {
      const li = el("li", "vil " + (v.availability || "never") + (v.site === selected ? " selected" : ""));
      li.dataset.site = v.site;
      li.dataset.availability = v.availability || "";
      const name = el("span", "vname", v.name || v.site);
      if (!v.known) name.appendChild(el("span", "unknown-tag", " (" + t("unknown_village") + ")"));
      li.appendChild(name);
      if (v.district) li.appendChild(el("span", "vmeta", t("district", { d: v.district })));
      li.appendChild(el("span", "vstate", t("avail_" + (v.availability || "none"))));
      li.appendChild(el("span", "valerts" + (v.open_alerts ? "" : " none"),
        v.open_alerts ? t("open_alerts", { n: v.open_alerts }) : t("no_open_alerts")));
      li.appendChild(el("span", "vcams" + (v.cameras_down ? " valerts" : ""),
        v.cameras_down ? t("cams_down", { n: v.cameras_down }) : t("cams_state", { up: v.cameras - v.cameras_down, n: v.cameras })));
      li.appendChild(el("span", "vcounts", t("counts", { in: v.count_in, out: v.count_out })));
      li.addEventListener("click", () => select(v.site));
      return li;
    }));
    $("no-villages").hidden = villages.length > 0;
  }

  async function loadVillages() {
    const r = await api("/api/villages");
    if (!r.ok) return;
    const body = await r.json();
    villages = body.villages;
    $("conn").hidden = body.broker_connected;
    renderVillages();
  }

  async function select(site) {
    selected = site;
    renderVillages();
    const r = await api("/api/villages/" + encodeURIComponent(site));
    if (!r.ok) { $("village").hidden = true; return; }
    const d = await r.json();
    $("village").hidden = false;
    $("v-name").textContent = d.village.name || d.village.site;
    $("v-state").textContent = t("avail_" + (d.village.availability || "none"));
    $("v-cams").replaceChildren(...d.cameras.map((c) => {
      const li = el("li", "cam " + c.state);
      li.dataset.camera = c.camera;
      li.dataset.state = c.state;
      li.appendChild(el("span", "cname", c.camera));
      li.appendChild(el("span", "cstate", t(c.state === "online" ? "online" : "offline_state")));
      if (c.fps !== null && c.fps !== undefined) li.appendChild(el("span", "cfps", c.fps + " fps"));
      return li;
    }));
    if (!d.cameras.length) $("v-cams").appendChild(el("li", "empty", t("no_cameras")));
    $("v-lines").replaceChildren(...d.lines.map((l) => {
      const li = el("li");
      li.appendChild(el("span", "lname", l.camera + " · " + l.line));
      li.appendChild(el("span", "", t("counts", { in: l.in, out: l.out })));
      return li;
    }));
    $("v-events").replaceChildren(...d.events.map(eventItem));
    if (!d.events.length) $("v-events").appendChild(el("li", "empty", t("no_events")));
  }

  async function poll() {
    const q = "/api/events?min_severity=warning&limit=" + (last === null ? "100" : "500&after=" + last);
    const r = await api(q);
    if (!r.ok) return false;
    const body = await r.json();
    last = body.last;
    const fresh = body.items.filter((e) => !feedItems.some((f) => f.id === e.id));
    for (const e of fresh) feedItems.unshift(e);
    feedItems.length = Math.min(feedItems.length, FEED_MAX);
    if (fresh.length) renderFeed();
    return body.items.length > 0;
  }

  async function tick() {
    try {
      const news = await poll();
      if (news) {
        await loadVillages();
        if (selected) await select(selected);
      }
    } catch (e) { $("conn").hidden = false; }
    setTimeout(tick, 2000);
  }

  async function start() {
    try {
      const me = await (await api("/api/me")).json();
      $("user").textContent = me.name + (me.district ? " · " + me.district : "");
    } catch (e) { /* shown when the server answers */ }
    setInterval(() => { $("clock").textContent = siteClock(); }, 1000);
    await loadVillages().catch(() => {});
    renderFeed();
    tick();
    // status and counts change without events: look again every 5 s
    setInterval(() => {
      loadVillages().then(() => (selected ? select(selected) : null)).catch(() => {});
    }, 5000);
  }

  $("logout").addEventListener("click", async () => {
    try { await fetch("/api/logout", { method: "POST", credentials: "same-origin" }); } catch (e) { /* go anyway */ }
    location.assign("/login");
  });
  $("v-close").addEventListener("click", () => { selected = null; $("village").hidden = true; renderVillages(); });
  $("player-close").addEventListener("click", () => { $("player").pause(); $("player-sec").hidden = true; });
  langListeners.push(() => { renderVillages(); renderFeed(); if (selected) select(selected); });
  start();
})();
