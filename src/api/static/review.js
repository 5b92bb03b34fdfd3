// The reviewers' page: search incidents (date range, camera, type, reviewed), play an incident's
// clip (the server answers Range requests, so the player seeks without loading it all), see its
// snapshots, mark it reviewed with a note. Times are the site's, as the server sends them.
Object.assign(DICT.id, {
  r_search: "Cari kejadian", r_from: "Dari tanggal", r_to: "Sampai tanggal", r_camera: "Kamera",
  r_type: "Jenis", r_status: "Status", r_apply: "Tampilkan", r_clear: "Hapus filter",
  r_all_cameras: "Semua kamera", r_all_types: "Semua jenis", r_all_status: "Semua",
  r_unreviewed: "Belum ditinjau", r_reviewed: "Sudah ditinjau",
  r_incidents: "Kejadian", r_none: "Tidak ada kejadian yang cocok.", r_more: "Muat lebih banyak",
  r_loading: "Memuat…", r_close: "Tutup", r_note: "Catatan", r_mark: "Tandai sudah ditinjau",
  r_mark_again: "Simpan ulang tinjauan",
  r_reviewed_by: "Ditinjau oleh {user}, {time}", r_not_reviewed: "Belum ditinjau",
  r_saved: "Tersimpan.", r_failed: "Gagal: {error}",
  r_clip_none: "Tidak ada rekaman untuk kejadian ini.",
  r_clip_pending: "Rekaman sedang dibuat; buka lagi sebentar lagi.",
  r_clip_failed: "Rekaman gagal dibuat.",
  r_clip_expired: "Rekaman sudah dihapus (masa simpan habis).",
  r_clip_error: "Rekaman tidak dapat diputar.",
  r_events: "{n} peringatan", r_snapshot: "Gambar kejadian",
  r_state_none: "tanpa rekaman", r_state_pending: "rekaman sedang dibuat",
  r_state_failed: "rekaman gagal", r_state_expired: "rekaman sudah dihapus",
});
Object.assign(DICT.en, {
  r_search: "Find incidents", r_from: "From date", r_to: "To date", r_camera: "Camera",
  r_type: "Type", r_status: "Status", r_apply: "Show", r_clear: "Clear filters",
  r_all_cameras: "All cameras", r_all_types: "All types", r_all_status: "All",
  r_unreviewed: "Not reviewed", r_reviewed: "Reviewed",
  r_incidents: "Incidents", r_none: "No incident matches.", r_more: "Load more",
  r_loading: "Loading…", r_close: "Close", r_note: "Note", r_mark: "Mark reviewed",
  r_mark_again: "Save the review again",
  r_reviewed_by: "Reviewed by {user}, {time}", r_not_reviewed: "Not reviewed yet",
  r_saved: "Saved.", r_failed: "Failed: {error}",
  r_clip_none: "No clip was recorded for this incident.",
  r_clip_pending: "The clip is still being recorded; open it again in a moment.",
  r_clip_failed: "The clip could not be written.",
  r_clip_expired: "The clip was removed (kept long enough).",
  r_clip_error: "The clip cannot be played.",
  r_events: "{n} alerts", r_snapshot: "Incident picture",
  r_state_none: "no clip", r_state_pending: "clip being recorded",
  r_state_failed: "clip failed", r_state_expired: "clip removed",
});
// i18n.js labelled the page before these words were known: label it again
applyLang();

(function () {
  const $ = (id) => document.getElementById(id);
  const TYPES = ["no_mask", "curfew_entry", "intrusion", "loitering", "crowding", "line_crossing",
    "camera_offline", "camera_online", "unrecorded_entry"];
  const PAGE = 20;
  const cams = new Map(); // camera id -> name
  let incidents = []; // shown, newest first
  let next = null; // cursor of the next page
  let query = ""; // the filter of the shown list
  let loading = 0; // generation: answers to an older search are dropped
  let open = null; // the incident in the detail view


  // ---- times: the server sends the site's local time with its offset
  function when(iso) {
    if (!iso || iso.length < 19) return "";
    return iso.slice(8, 10) + "/" + iso.slice(5, 7) + "/" + iso.slice(0, 4) + " " + iso.slice(11, 19);
  }
  function length(s) {
    if (typeof s !== "number") return "";
    const total = Math.round(s);
    return Math.floor(total / 60) + ":" + String(total % 60).padStart(2, "0");
  }
  function cameraName(id) {
    return cams.get(id) || id;
  }

  // ---- filters
  function option(select, value, label) {
    const o = el("option", null, label);
    o.value = value;
    select.appendChild(o);
  }
  function renderFilters() {
    const keep = (id) => $(id).value;
    const cam = keep("f-camera"), type = keep("f-type"), rev = keep("f-reviewed");
    const c = $("f-camera");
    c.textContent = "";
    option(c, "", t("r_all_cameras"));
    for (const [id, name] of cams) option(c, id, name);
    c.value = cam;
    const ty = $("f-type");
    ty.textContent = "";
    option(ty, "", t("r_all_types"));
    for (const k of TYPES) option(ty, k, t(k));
    ty.value = type;
    const r = $("f-reviewed");
    r.textContent = "";
    option(r, "", t("r_all_status"));
    option(r, "false", t("r_unreviewed"));
    option(r, "true", t("r_reviewed"));
    r.value = rev;
  }
  function filterQuery() {
    const p = new URLSearchParams();
    for (const [id, name] of [["f-from", "from"], ["f-to", "to"], ["f-camera", "camera"], ["f-type", "type"], ["f-reviewed", "reviewed"]]) {
      const v = $(id).value;
      if (v) p.set(name, v);
    }
    p.set("limit", String(PAGE));
    return p.toString();
  }

  // ---- the list
  function build(inc) {
    const li = el("li", "incident sev-" + inc.severity + (inc.review ? " reviewed" : "") + (open && open.id === inc.id ? " open" : ""));
    li.dataset.id = inc.id;
    li.dataset.type = inc.type;
    const b = el("button", "pick");
    b.type = "button";
    if (inc.snapshot) {
      const img = el("img", "thumb");
      img.alt = "";
      img.loading = "lazy";
      img.addEventListener("error", () => img.remove());
      img.src = inc.snapshot;
      b.appendChild(img);
    }
    const body = el("span", "body");
    body.appendChild(el("span", "what", t(inc.type)));
    body.appendChild(el("span", "where", cameraName(inc.camera)));
    const clip = inc.clip.url ? "▶ " + length(inc.clip.duration_s) : t("r_state_" + inc.clip.state);
    body.appendChild(el("span", "when", when(inc.time) + " · " + clip));
    if (inc.review) body.appendChild(el("span", "badge", "✓ " + t("r_reviewed_by", { user: inc.review.by, time: when(inc.review.at) })));
    b.appendChild(body);
    b.addEventListener("click", () => show(inc));
    li.appendChild(b);
    return li;
  }
  function renderList() {
    const ol = $("list");
    ol.textContent = "";
    for (const inc of incidents) ol.appendChild(build(inc));
    $("empty").hidden = incidents.length > 0 || loading !== 0;
    $("more").hidden = !next;
  }
  async function load(more) {
    const gen = ++loading;
    if (!more) {
      query = filterQuery();
      next = null;
    }
    const url = "/api/incidents?" + query + (more && next ? "&cursor=" + encodeURIComponent(next) : "");
    $("list-msg").textContent = t("r_loading");
    $("more").disabled = true;
    try {
      const r = await api(url);
      const body = await r.json().catch(() => ({}));
      if (gen !== loading) return;
      if (!r.ok) {
        $("list-msg").textContent = t("r_failed", { error: body.error || r.status });
        if (!more) incidents = [];
        next = null;
      } else {
        $("list-msg").textContent = "";
        incidents = more ? incidents.concat(body.items) : body.items;
        next = body.next;
      }
    } catch (e) {
      if (gen !== loading) return;
      $("list-msg").textContent = t("offline");
    } finally {
      if (gen === loading) {
        loading = 0;
        $("more").disabled = false;
        renderList();
      }
    }
  }

  // ---- one incident
  function renderDetail() {
    const inc = open;
    if (!inc) return;
    $("d-title").textContent = t(inc.type);
    $("d-where").textContent = cameraName(inc.camera) + " · " + when(inc.time) +
      (inc.events.length > 1 ? " · " + t("r_events", { n: inc.events.length }) : "");
    const noclip = $("d-noclip");
    if (!inc.clip.url) {
      noclip.textContent = t("r_clip_" + inc.clip.state);
      noclip.hidden = false;
    } else if (noclip.dataset.error !== inc.id) {
      noclip.hidden = true;
    }
    const ul = $("d-events");
    ul.textContent = "";
    if (inc.events.length > 1) {
      for (const e of inc.events) {
        const li = el("li", null, t(e.type) + " · " + when(e.time));
        if (e.snapshot) {
          const a = el("button", "tool", t("r_snapshot"));
          a.type = "button";
          a.addEventListener("click", () => showSnapshot(e.snapshot));
          li.appendChild(a);
        }
        ul.appendChild(li);
      }
    }
    $("d-review").textContent = inc.review
      ? t("r_reviewed_by", { user: inc.review.by, time: when(inc.review.at) }) + (inc.review.note ? ": " + inc.review.note : "")
      : t("r_not_reviewed");
    $("d-review").classList.toggle("done", !!inc.review);
    $("mark").textContent = t(inc.review ? "r_mark_again" : "r_mark");
  }
  function showSnapshot(url) {
    const img = $("d-snap");
    if (!url) {
      img.hidden = true;
      img.removeAttribute("src");
      return;
    }
    img.alt = t("r_snapshot");
    img.hidden = false;
    img.src = url;
  }
  function show(inc) {
    open = inc;
    const video = $("video");
    const noclip = $("d-noclip");
    delete noclip.dataset.error;
    $("d-msg").textContent = "";
    $("note").value = inc.review && inc.review.note ? inc.review.note : "";
    if (inc.clip.url) {
      video.hidden = false;
      video.src = inc.clip.url;
      // the click that opened it lets it play; a browser that still refuses shows its controls
      video.play().catch(() => {});
    } else {
      video.pause();
      video.removeAttribute("src");
      video.load();
      video.hidden = true;
    }
    showSnapshot(inc.snapshot);
    $("detail").hidden = false;
    renderDetail();
    for (const li of $("list").children) li.classList.toggle("open", li.dataset.id === inc.id);
    $("detail").scrollIntoView({ block: "start" });
  }
  function close() {
    open = null;
    const video = $("video");
    video.pause();
    video.removeAttribute("src");
    video.load();
    $("detail").hidden = true;
    for (const li of $("list").children) li.classList.remove("open");
  }
  async function markReviewed(ev) {
    ev.preventDefault();
    if (!open) return;
    const id = open.id;
    const button = $("mark");
    button.disabled = true;
    $("d-msg").textContent = "";
    try {
      const r = await api("/api/incidents/" + encodeURIComponent(id) + "/review", {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/json" },
        body: JSON.stringify({ note: $("note").value }),
      });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) {
        $("d-msg").textContent = t("r_failed", { error: body.error || r.status });
        return;
      }
      incidents = incidents.map((i) => (i.id === body.id ? body : i));
      if (open && open.id === body.id) {
        open = body;
        renderDetail();
      }
      renderList();
      $("d-msg").textContent = t("r_saved");
    } catch (e) {
      $("d-msg").textContent = t("offline");
    } finally {
      button.disabled = false;
    }
  }

  // ---- start
  async function start() {
    try {
      const r = await api("/api/me");
      $("user").textContent = (await r.json()).name;
    } catch (e) {
      return;
    }
    $("zone").textContent = SITE.zone || "";
    const tick = () => { $("clock").textContent = siteClock(); };
    tick();
    setInterval(tick, 1000);
    $("logout").addEventListener("click", async () => {
      try { await fetch("/api/logout", { method: "POST", credentials: "same-origin" }); } catch (e) { /* go anyway */ }
      location.assign("/login");
    });
    $("filters").addEventListener("submit", (ev) => {
      ev.preventDefault();
      load(false);
    });
    $("f-clear").addEventListener("click", () => {
      for (const id of ["f-from", "f-to", "f-camera", "f-type", "f-reviewed"]) $(id).value = "";
      load(false);
    });
    $("more").addEventListener("click", () => load(true));
    $("d-close").addEventListener("click", close);
    $("review-form").addEventListener("submit", markReviewed);
    $("video").addEventListener("error", () => {
      if (!open || !open.clip.url) return;
      const noclip = $("d-noclip");
      noclip.dataset.error = open.id;
      noclip.textContent = t("r_clip_error");
      noclip.hidden = false;
    });
    langListeners.push(() => {
      renderFilters();
      renderList();
      renderDetail();
    });
    renderFilters();
    try {
      const r = await api("/api/review/cameras");
      if (r.ok) for (const c of await r.json()) cams.set(c.id, c.name || c.id);
    } catch (e) { /* ids instead of names */ }
    renderFilters();
    await load(false);
    // /review#<event id>: the link of a phone message opens that incident
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (/^[A-Za-z0-9_-]{1,64}$/.test(wanted)) {
      try {
        const r = await api("/api/incidents/" + encodeURIComponent(wanted));
        if (r.ok) show(await r.json());
      } catch (e) { /* the list is there */ }
    }
  }
  start();
})();
