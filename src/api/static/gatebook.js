// The gate book: the gate log (every crossing with the person's picture), the guest book
// (record a resident, guest or newcomer from an entry, link their exit, find and change a record;
// every change is kept with who and when), who is inside, and the daily report for the RT/RW
// book (printable, CSV). Guards and admins only. Times are the site's, as the server sends them.
Object.assign(DICT.id, {
  gb_title: "Buku tamu", gb_to_guard: "Pos jaga", gb_gate_now: "Gerbang hari ini",
  gb_start_label: "Orang di dalam saat hitungan hari ini dimulai (diisi admin)",
  gb_save: "Simpan", gb_cancel: "Batal", gb_saved: "Tersimpan.", gb_failed: "Gagal: {error}",
  gb_log: "Log gerbang", gb_book: "Buku tamu", gb_report: "Laporan harian",
  gb_date: "Tanggal", gb_only_open: "Hanya yang belum dicatat", gb_csv: "Unduh CSV",
  gb_log_empty: "Belum ada orang melintas di gerbang pada tanggal ini.", gb_more: "Muat lebih banyak",
  gb_status: "Status", gb_kind: "Jenis", gb_search: "Cari", gb_all: "Semua",
  gb_inside_status: "Masih di dalam", gb_left_status: "Sudah keluar",
  gb_book_empty: "Tidak ada catatan yang cocok.",
  gb_day: "Hari laporan", gb_show: "Tampilkan", gb_print: "Cetak",
  gb_reports_made: "Laporan yang sudah dibuat",
  gb_resident: "Warga", gb_guest: "Tamu", gb_newcomer: "Pendatang",
  gb_origin: "Asal", gb_visiting: "Mengunjungi / tinggal di", gb_purpose: "Keperluan",
  gb_phone: "Nomor HP", gb_stay: "Lama tinggal", gb_rt: "RT",
  gb_form_new: "Catat orang masuk", gb_form_edit: "Ubah catatan #{id}",
  gb_mark_left: "Tandai sudah keluar", gb_trail: "Riwayat perubahan",
  gb_exit_title: "Siapa yang keluar?", gb_exit_search: "Cari nama…", gb_exit_none: "Tidak ada tamu atau pendatang yang masih di dalam.",
  gb_record: "Catat", gb_link_exit: "Siapa yang keluar?", gb_edit: "Ubah", gb_left: "Keluar",
  gb_in: "Masuk", gb_out: "Keluar", gb_night: "malam", gb_not_recorded: "belum dicatat",
  gb_alerted: "peringatan terkirim", gb_mask: "bermasker", gb_no_mask: "tanpa masker",
  gb_exit_of: "keluar: {name}",
  gb_inside_detail: "{g} tamu · {n} pendatang masih di dalam",
  gb_estimate: "Perkiraan semua orang di dalam: {e} (awal hari {s}, diisi {by})",
  gb_no_estimate: "Awal hari belum diisi admin: perkiraan semua orang di dalam belum ada.",
  gb_entered: "masuk {time}", gb_left_at: "keluar {time}",
  gb_need_kind: "Pilih warga, tamu atau pendatang.", gb_need_name: "Tulis nama orangnya.",
  gb_need_rt: "RT pendatang perlu diisi.", gb_need_stay: "Lama tinggal pendatang perlu diisi.",
  gb_created: "dibuat", gb_edited: "diubah", gb_exit: "keluar",
  gb_next: "Laporan berikutnya: {time}", gb_draft: "Sementara: hari ini belum selesai, angka masih bertambah.",
  gb_sent: "terkirim {time}", gb_not_sent: "belum terkirim",
  r_h_title: "Laporan harian gerbang", r_h_period: "{from} sampai {to}",
  r_h_hours: "Masuk dan keluar per jam", r_h_hour: "Jam", r_h_total: "Jumlah",
  r_h_alerts: "Peringatan", r_h_count: "Banyaknya", r_h_none: "Tidak ada.",
  r_h_recorded: "Tamu dan pendatang tercatat", r_h_unrecorded: "Masuk malam yang tidak tercatat",
  r_h_offline: "Kamera yang mati", r_h_minutes: "Menit", r_h_times: "Kali", r_h_still: "masih mati",
  r_h_made: "Dibuat {time}", r_h_sign_guard: "Petugas jaga", r_h_sign_rt: "Ketua RT/RW",
  r_h_alerted: "peringatan dikirim",
  unrecorded_entry: "Masuk malam belum dicatat",
});
Object.assign(DICT.en, {
  gb_title: "Gate book", gb_to_guard: "Guard post", gb_gate_now: "Gate today",
  gb_start_label: "People inside when today's count started (set by an admin)",
  gb_save: "Save", gb_cancel: "Cancel", gb_saved: "Saved.", gb_failed: "Failed: {error}",
  gb_log: "Gate log", gb_book: "Guest book", gb_report: "Daily report",
  gb_date: "Date", gb_only_open: "Only not recorded", gb_csv: "Download CSV",
  gb_log_empty: "Nobody crossed the gate on this date yet.", gb_more: "Load more",
  gb_status: "Status", gb_kind: "Kind", gb_search: "Search", gb_all: "All",
  gb_inside_status: "Still inside", gb_left_status: "Left",
  gb_book_empty: "No record matches.",
  gb_day: "Report day", gb_show: "Show", gb_print: "Print",
  gb_reports_made: "Reports made",
  gb_resident: "Resident", gb_guest: "Guest", gb_newcomer: "Newcomer",
  gb_origin: "From", gb_visiting: "Visiting / staying at", gb_purpose: "Purpose",
  gb_phone: "Phone", gb_stay: "Length of stay", gb_rt: "RT",
  gb_form_new: "Record who came in", gb_form_edit: "Change record #{id}",
  gb_mark_left: "Mark as left", gb_trail: "Changes",
  gb_exit_title: "Who is leaving?", gb_exit_search: "Search a name…", gb_exit_none: "No guest or newcomer is inside.",
  gb_record: "Record", gb_link_exit: "Who left?", gb_edit: "Change", gb_left: "Left",
  gb_in: "In", gb_out: "Out", gb_night: "night", gb_not_recorded: "not recorded",
  gb_alerted: "alert sent", gb_mask: "mask", gb_no_mask: "no mask",
  gb_exit_of: "exit: {name}",
  gb_inside_detail: "{g} guest(s) · {n} newcomer(s) still inside",
  gb_estimate: "Estimate of everyone inside: {e} (start of day {s}, set by {by})",
  gb_no_estimate: "No start of day set by an admin: no estimate of everyone inside.",
  gb_entered: "in {time}", gb_left_at: "out {time}",
  gb_need_kind: "Choose resident, guest or newcomer.", gb_need_name: "Write the person's name.",
  gb_need_rt: "A newcomer's RT is needed.", gb_need_stay: "A newcomer's length of stay is needed.",
  gb_created: "created", gb_edited: "changed", gb_exit: "left",
  gb_next: "Next report: {time}", gb_draft: "Draft: the day is not over, figures still grow.",
  gb_sent: "sent {time}", gb_not_sent: "not sent",
  r_h_title: "Daily gate report", r_h_period: "{from} to {to}",
  r_h_hours: "In and out per hour", r_h_hour: "Hour", r_h_total: "Total",
  r_h_alerts: "Alerts", r_h_count: "Count", r_h_none: "None.",
  r_h_recorded: "Guests and newcomers recorded", r_h_unrecorded: "Night entries not recorded",
  r_h_offline: "Cameras offline", r_h_minutes: "Minutes", r_h_times: "Times", r_h_still: "still offline",
  r_h_made: "Made {time}", r_h_sign_guard: "Guard on duty", r_h_sign_rt: "Head of RT/RW",
  r_h_alerted: "alert sent",
  unrecorded_entry: "Night entry not recorded",
});
applyLang();

(function () {
  const $ = (id) => document.getElementById(id);
  let me = null;
  let cams = new Map(); // id -> name
  let tab = "log";
  let logNext = null; // cursor of the log's next page
  let logGen = 0; // answers to an older load are dropped
  let entries = []; // the log as shown
  let records = [];
  let form = null; // {entry, record} being written
  let exitEntry = null; // the exit being linked
  let inside = [];
  let report = null; // {report, draft, text}
  let reportsInfo = null;

  // ---- times: the server sends the site's local time with its offset
  function when(iso) {
    if (!iso || iso.length < 19) return "";
    return iso.slice(8, 10) + "/" + iso.slice(5, 7) + " " + iso.slice(11, 16);
  }
  function clock(iso) {
    return iso && iso.length >= 19 ? iso.slice(11, 19) : "";
  }
  function siteToday() {
    const m = /([+-])(\d\d):(\d\d)/.exec(SITE.offset || "+00:00");
    const off = (Number(m[2]) * 60 + Number(m[3])) * 60000 * (m[1] === "-" ? -1 : 1);
    return new Date(Date.now() + off).toISOString().slice(0, 10);
  }
  function kindWord(k) { return t("gb_" + k); }
  async function answer(r) {
    const body = await r.json().catch(() => ({}));
    return { ok: r.ok, status: r.status, body };
  }

  // ---- tabs
  function show(name) {
    tab = name;
    for (const b of document.querySelectorAll(".tab")) b.setAttribute("aria-selected", b.dataset.tab === name ? "true" : "false");
    for (const p of ["log", "book", "report"]) $("pane-" + p).hidden = p !== name;
    if (name === "book") loadBook();
    if (name === "report") loadReports();
  }

  // ---- who is inside
  async function loadInside() {
    try {
      const r = await api("/api/gate/inside");
      if (!r.ok) return;
      const v = await r.json();
      $("gb-in").textContent = v.in;
      $("gb-out").textContent = v.out;
      $("inside-now").textContent = v.inside;
      const parts = [t("gb_inside_detail", { g: v.guests, n: v.newcomers })];
      parts.push(v.estimate === null ? t("gb_no_estimate") : t("gb_estimate", { e: v.estimate, s: v.start, by: v.start_set_by }));
      $("inside-detail").textContent = parts.join(" — ");
      if (me && me.role === "admin" && document.activeElement !== $("start-n") && v.start !== null) $("start-n").value = v.start;
    } catch (e) { /* next time */ }
  }
  async function saveStart(ev) {
    ev.preventDefault();
    $("start-msg").textContent = "";
    const n = Number($("start-n").value);
    const r = await api("/api/gate/occupancy", {
      method: "PUT", headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ start: n }),
    });
    const a = await answer(r);
    $("start-msg").textContent = a.ok ? t("gb_saved") : t("gb_failed", { error: a.body.error || a.status });
    loadInside();
  }

  // ---- the log
  function entryItem(e) {
    const open = !e.record;
    const li = el("li", "entry dir-" + e.direction + (e.night ? " night" : "") + (open ? " open" : ""));
    li.dataset.id = e.id;
    if (e.crop) {
      const img = el("img", "crop");
      img.alt = "";
      img.loading = "lazy";
      img.addEventListener("error", () => img.remove());
      img.src = e.crop;
      li.appendChild(img);
    }
    const body = el("div", "body");
    body.appendChild(el("div", "what", (e.direction === "in" ? t("gb_in") : t("gb_out")) + " · " + clock(e.time)));
    body.appendChild(el("div", "where", (e.camera_name || e.camera) + " · " + t("line") + " " + e.line));
    const badges = el("div", "badges");
    if (e.mask) badges.appendChild(el("span", "badge " + e.mask, t("gb_" + e.mask)));
    if (e.night) badges.appendChild(el("span", "badge night", t("gb_night")));
    if (e.record) {
      const text = e.record.exit ? t("gb_exit_of", { name: e.record.name }) : kindWord(e.record.kind) + ": " + e.record.name;
      badges.appendChild(el("span", "badge recorded", text));
    } else if (e.direction === "in") {
      badges.appendChild(el("span", "badge open", t("gb_not_recorded")));
    }
    if (e.alert_id) badges.appendChild(el("span", "badge alerted", t("gb_alerted")));
    body.appendChild(badges);
    li.appendChild(body);
    const act = el("div", "act");
    if (open && e.direction === "in") {
      const b = el("button", "record", t("gb_record"));
      b.type = "button";
      b.addEventListener("click", () => openForm(e, null));
      act.appendChild(b);
    } else if (open && e.direction === "out") {
      const b = el("button", "exit-link second", t("gb_link_exit"));
      b.type = "button";
      b.addEventListener("click", () => openExit(e));
      act.appendChild(b);
    } else if (e.record && !e.record.exit) {
      const b = el("button", "edit second", t("gb_edit"));
      b.type = "button";
      b.addEventListener("click", () => editRecord(e.record.id));
      act.appendChild(b);
    }
    li.appendChild(act);
    return li;
  }
  // entries already shown keep their element (and loaded picture) while they do not change: the
  // log reloads at every crossing, and a button under the guard's finger must not be replaced
  let shown = new Map(); // entry id -> { key, node }
  function renderLog(fresh) {
    const ol = $("log");
    const next = new Map();
    for (const e of entries) {
      const key = JSON.stringify(e);
      const old = shown.get(e.id);
      const node = old && old.key === key && !fresh ? old.node : entryItem(e);
      next.set(e.id, { key, node });
    }
    for (const [id, v] of shown) if (!next.has(id) || next.get(id).node !== v.node) v.node.remove();
    let at = ol.firstElementChild;
    for (const { node } of next.values()) {
      if (node === at) at = at.nextElementSibling;
      else ol.insertBefore(node, at);
    }
    shown = next;
    $("log-empty").hidden = entries.length > 0;
    $("log-more").hidden = !logNext;
  }
  function logQuery(cursor) {
    const p = new URLSearchParams();
    p.set("date", $("log-date").value || siteToday());
    if ($("log-open").checked) p.set("unrecorded", "true");
    p.set("limit", "50");
    if (cursor) p.set("cursor", cursor);
    return p;
  }
  async function loadLog(more) {
    const gen = ++logGen;
    const p = logQuery(more ? logNext : null);
    const csv = new URLSearchParams({ date: p.get("date") });
    $("log-csv").href = "/api/gate/export/entries.csv?" + csv.toString();
    try {
      const r = await api("/api/gate/entries?" + p.toString());
      if (!r.ok || gen !== logGen) return;
      const v = await r.json();
      entries = more ? entries.concat(v.items) : v.items;
      logNext = v.next;
      renderLog();
    } catch (e) { /* next time */ }
  }

  // ---- the record form
  function setFieldErrors(fields) {
    for (const p of document.querySelectorAll("#record-form .ferr")) p.textContent = (fields && fields[p.dataset.for]) || "";
  }
  function chosenKind() {
    const c = document.querySelector("#record-form input[name=kind]:checked");
    return c ? c.value : "";
  }
  function showNewcomer() {
    $("f-newcomer").hidden = chosenKind() !== "newcomer";
  }
  function fillForm(rec) {
    for (const k of ["resident", "guest", "newcomer"]) $("f-kind-" + k).checked = rec ? rec.kind === k : false;
    for (const f of ["name", "origin", "visiting", "purpose", "phone", "stay", "rt"]) $("f-" + f).value = rec ? rec[f] || "" : "";
    showNewcomer();
  }
  function entryPicture(img, text, e) {
    img.hidden = !(e && e.crop);
    if (e && e.crop) img.src = e.crop;
    text.textContent = e ? (e.direction === "in" ? t("gb_in") : t("gb_out")) + " " + when(e.time) + " · " + (e.camera_name || e.camera) : "";
  }
  function openForm(entry, rec) {
    form = { entry, record: rec };
    $("f-title").textContent = rec ? t("gb_form_edit", { id: rec.id }) : t("gb_form_new");
    entryPicture($("f-crop"), $("f-entry-text"), entry || (rec && rec.crop ? { crop: rec.crop, time: rec.entered, direction: "in", camera: "" } : null));
    fillForm(rec);
    setFieldErrors(null);
    $("f-msg").textContent = "";
    $("f-left").hidden = !(rec && rec.status === "inside");
    const trail = $("f-changes");
    trail.textContent = "";
    $("f-trail").hidden = !(rec && rec.changes && rec.changes.length);
    if (rec && rec.changes) {
      for (const c of rec.changes) {
        const what = c.changes.map((x) => x.field + (x.from ? ": " + x.from + " → " : ": ") + x.to).join("; ");
        trail.appendChild(el("li", null, when(c.at) + " " + c.user + " " + t("gb_" + c.action) + (what ? " — " + what : "")));
      }
    }
    $("form-wrap").hidden = false;
    $("f-name").focus();
  }
  function closeForm() {
    $("form-wrap").hidden = true;
    form = null;
  }
  async function editRecord(id) {
    const r = await api("/api/gate/records/" + id);
    if (!r.ok) return;
    openForm(null, await r.json());
  }
  function formBody() {
    const b = { kind: chosenKind() };
    for (const f of ["name", "origin", "visiting", "purpose", "phone", "stay", "rt"]) b[f] = $("f-" + f).value.trim();
    if (b.kind !== "newcomer") { b.stay = ""; b.rt = ""; }
    return b;
  }
  function checkForm(b) {
    const errs = {};
    if (!b.kind) errs.kind = t("gb_need_kind");
    if (!b.name) errs.name = t("gb_need_name");
    if (b.kind === "newcomer" && !b.rt) errs.rt = t("gb_need_rt");
    if (b.kind === "newcomer" && !b.stay) errs.stay = t("gb_need_stay");
    return Object.keys(errs).length ? errs : null;
  }
  async function saveForm(ev) {
    ev.preventDefault();
    if (!form) return;
    const b = formBody();
    const errs = checkForm(b);
    setFieldErrors(errs);
    if (errs) return;
    $("f-save").disabled = true;
    try {
      let r;
      if (form.record) {
        r = await api("/api/gate/records/" + form.record.id, {
          method: "PUT", headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify(b),
        });
      } else {
        if (form.entry) b.entry_id = form.entry.id;
        r = await api("/api/gate/records", {
          method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify(b),
        });
      }
      const a = await answer(r);
      if (a.ok) {
        closeForm();
        refreshAll();
      } else {
        setFieldErrors(a.body.fields);
        $("f-msg").textContent = t("gb_failed", { error: a.body.error || a.status });
      }
    } finally {
      $("f-save").disabled = false;
    }
  }
  async function markLeft() {
    if (!form || !form.record) return;
    const r = await api("/api/gate/records/" + form.record.id + "/exit", {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, body: "{}",
    });
    const a = await answer(r);
    if (a.ok) { closeForm(); refreshAll(); } else $("f-msg").textContent = t("gb_failed", { error: a.body.error || a.status });
  }

  // ---- linking an exit
  function renderPicker() {
    const q = $("x-q").value.trim().toLowerCase();
    const ul = $("exit-picker");
    ul.textContent = "";
    const shown = inside.filter((r) => !q || r.name.toLowerCase().includes(q));
    for (const r of shown) {
      const li = el("li");
      const b = el("button", null, r.name + " · " + kindWord(r.kind) + " · " + t("gb_entered", { time: when(r.entered) }));
      b.type = "button";
      b.dataset.record = r.id;
      b.addEventListener("click", () => linkExit(r.id));
      li.appendChild(b);
      ul.appendChild(li);
    }
    $("x-msg").textContent = shown.length ? "" : t("gb_exit_none");
  }
  async function openExit(e) {
    exitEntry = e;
    entryPicture($("x-crop"), $("x-entry-text"), e);
    $("x-q").value = "";
    $("x-q").placeholder = t("gb_exit_search");
    const r = await api("/api/gate/records?status=inside&limit=200");
    inside = r.ok ? await r.json() : [];
    renderPicker();
    $("exit-wrap").hidden = false;
  }
  async function linkExit(id) {
    const r = await api("/api/gate/records/" + id + "/exit", {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ entry_id: exitEntry.id }),
    });
    const a = await answer(r);
    if (a.ok) { $("exit-wrap").hidden = true; exitEntry = null; refreshAll(); } else $("x-msg").textContent = t("gb_failed", { error: a.body.error || a.status });
  }

  // ---- the book
  function option(select, value, label) {
    const o = el("option", null, label);
    o.value = value;
    select.appendChild(o);
  }
  function renderSelects() {
    const s = $("q-status"), k = $("q-kind");
    const sv = s.value, kv = k.value;
    s.textContent = ""; k.textContent = "";
    option(s, "", t("gb_all")); option(s, "inside", t("gb_inside_status")); option(s, "left", t("gb_left_status"));
    option(k, "", t("gb_all"));
    for (const x of ["guest", "newcomer", "resident"]) option(k, x, kindWord(x));
    s.value = sv; k.value = kv;
  }
  function bookQuery() {
    const p = new URLSearchParams();
    for (const [id, name] of [["q-name", "q"], ["q-date", "date"], ["q-status", "status"], ["q-kind", "kind"]]) {
      const v = $(id).value.trim();
      if (v) p.set(name, v);
    }
    return p;
  }
  function recordItem(r) {
    const li = el("li", "rec " + r.status);
    li.dataset.id = r.id;
    if (r.crop) {
      const img = el("img", "crop");
      img.alt = "";
      img.loading = "lazy";
      img.addEventListener("error", () => img.remove());
      img.src = r.crop;
      li.appendChild(img);
    }
    const body = el("div", "body");
    body.appendChild(el("div", "what", r.name));
    const where = [kindWord(r.kind)];
    if (r.origin) where.push(r.origin);
    if (r.visiting) where.push("→ " + r.visiting);
    if (r.rt) where.push("RT " + r.rt);
    body.appendChild(el("div", "where", where.join(" · ")));
    const times = [t("gb_entered", { time: when(r.entered) })];
    if (r.left) times.push(t("gb_left_at", { time: when(r.left) }));
    if (r.phone) times.push(r.phone);
    body.appendChild(el("div", "when", times.join(" · ")));
    const badges = el("div", "badges");
    badges.appendChild(el("span", "badge " + r.status, t(r.status === "inside" ? "gb_inside_status" : "gb_left_status")));
    body.appendChild(badges);
    li.appendChild(body);
    const act = el("div", "act");
    const b = el("button", "edit second", t("gb_edit"));
    b.type = "button";
    b.addEventListener("click", () => editRecord(r.id));
    act.appendChild(b);
    li.appendChild(act);
    return li;
  }
  async function loadBook(ev) {
    if (ev) ev.preventDefault();
    const p = bookQuery();
    $("book-csv").href = "/api/gate/export/records.csv?" + p.toString();
    p.set("limit", "200");
    try {
      const r = await api("/api/gate/records?" + p.toString());
      if (!r.ok) return;
      records = await r.json();
      const ol = $("book");
      ol.textContent = "";
      for (const x of records) ol.appendChild(recordItem(x));
      $("book-empty").hidden = records.length > 0;
    } catch (e) { /* next time */ }
  }

  // ---- the daily report
  function table(head, rows, numeric) {
    const tb = el("table");
    const tr = el("tr");
    head.forEach((h, i) => tr.appendChild(el("th", numeric[i] ? "n" : null, h)));
    tb.appendChild(tr);
    for (const r of rows) {
      const row = el("tr");
      r.forEach((c, i) => row.appendChild(el("td", numeric[i] ? "n" : null, String(c))));
      tb.appendChild(row);
    }
    return tb;
  }
  function wrap(node) {
    const w = el("div", "scroll");
    w.appendChild(node);
    return w;
  }
  function renderReport() {
    const box = $("report");
    box.textContent = "";
    if (!report) return;
    const r = report.report;
    const c = r.recorded;
    box.appendChild(el("h2", null, t("r_h_title") + " · " + (r.site_name || r.site)));
    box.appendChild(el("p", null, t("r_h_period", { from: when(r.from), to: when(r.to) }) + " " + (SITE.zone || "")));
    if (report.draft) box.appendChild(el("p", "draft", t("gb_draft")));
    // the day at a glance, then the details
    const sum = el("ul", "summary");
    sum.appendChild(el("li", null, t("in") + " " + r.total_in + " · " + t("out") + " " + r.total_out));
    sum.appendChild(el("li", null, t("r_h_recorded") + ": " + c.guests + " " + t("gb_guest").toLowerCase() + ", " + c.newcomers + " " + t("gb_newcomer").toLowerCase() + ", " + c.residents + " " + t("gb_resident").toLowerCase()));
    sum.appendChild(el("li", null, t("r_h_unrecorded") + ": " + r.unrecorded_night.length));
    sum.appendChild(el("li", null, t("r_h_alerts") + ": " + r.alerts.reduce((n, a) => n + a.count, 0)));
    sum.appendChild(el("li", null, t("r_h_offline") + ": " + r.cameras_offline.length));
    box.appendChild(sum);
    box.appendChild(el("h3", null, t("r_h_recorded")));
    if (c.people.length) {
      box.appendChild(wrap(table(
        [t("name"), t("gb_kind"), t("gb_origin"), t("gb_visiting"), t("gb_purpose"), t("gb_rt"), t("gb_in"), t("gb_out")],
        c.people.map((p) => [p.name, kindWord(p.kind), p.origin, p.visiting, p.purpose, p.rt, when(p.entered), p.left ? when(p.left) : ""]),
        [false, false, false, false, false, false, false, false])));
    } else box.appendChild(el("p", null, t("r_h_none")));
    box.appendChild(el("h3", null, t("r_h_unrecorded")));
    if (r.unrecorded_night.length) {
      box.appendChild(wrap(table([t("gb_date"), t("cameras"), t("line")],
        r.unrecorded_night.map((e) => [when(e.time) + (e.alerted ? " (" + t("r_h_alerted") + ")" : ""), cams.get(e.camera) || e.camera, e.line]),
        [false, false, false])));
    } else box.appendChild(el("p", null, t("r_h_none")));
    box.appendChild(el("h3", null, t("r_h_alerts")));
    if (r.alerts.length) box.appendChild(wrap(table([t("gb_kind"), t("r_h_count")], r.alerts.map((a) => [t(a.type), a.count]), [false, true])));
    else box.appendChild(el("p", null, t("r_h_none")));
    box.appendChild(el("h3", null, t("r_h_offline")));
    if (r.cameras_offline.length) {
      box.appendChild(wrap(table([t("cameras"), t("r_h_times"), t("r_h_minutes")],
        r.cameras_offline.map((o) => [o.name + (o.offline_at_end ? " (" + t("r_h_still") + ")" : ""), o.times, o.minutes]),
        [false, true, true])));
    } else box.appendChild(el("p", null, t("r_h_none")));
    box.appendChild(el("h3", null, t("r_h_hours")));
    // two hours to a row: the day fits half a printed page
    const half = Math.ceil(r.hours.length / 2);
    const rows = [];
    for (let i = 0; i < half; i += 1) {
      const a = r.hours[i], b = r.hours[i + half];
      rows.push([a.hour, a.in, a.out, b ? b.hour : "", b ? b.in : "", b ? b.out : ""]);
    }
    rows.push([t("r_h_total"), r.total_in, r.total_out, "", "", ""]);
    box.appendChild(wrap(table([t("r_h_hour"), t("in"), t("out"), t("r_h_hour"), t("in"), t("out")], rows,
      [false, true, true, false, true, true])));
    box.appendChild(el("p", "dim", t("r_h_made", { time: when(r.made_at) })));
    const sign = el("div", "sign");
    sign.appendChild(el("div", null, t("r_h_sign_guard")));
    sign.appendChild(el("div", null, t("r_h_sign_rt")));
    box.appendChild(sign);
  }
  async function showReport(day) {
    if (!day) return;
    $("r-day").value = day;
    $("r-csv").href = "/api/gate/reports/" + day + "/report.csv";
    const r = await api("/api/gate/reports/" + day);
    report = r.ok ? await r.json() : null;
    renderReport();
  }
  function renderReportList() {
    const ul = $("r-list");
    ul.textContent = "";
    if (!reportsInfo) return;
    $("r-next").textContent = reportsInfo.next ? t("gb_next", { time: when(reportsInfo.next) }) : "";
    for (const r of reportsInfo.reports) {
      const li = el("li");
      const b = el("button", null, r.day);
      b.type = "button";
      b.addEventListener("click", () => showReport(r.day));
      li.appendChild(b);
      li.appendChild(el("span", "dim", r.sent_at ? t("gb_sent", { time: when(r.sent_at) }) : t("gb_not_sent") + (r.send_note ? " (" + r.send_note + ")" : "")));
      ul.appendChild(li);
    }
  }
  async function loadReports() {
    try {
      const r = await api("/api/gate/reports");
      if (!r.ok) return;
      reportsInfo = await r.json();
      renderReportList();
      if (!report) {
        const day = $("r-day").value || (reportsInfo.reports[0] && reportsInfo.reports[0].day) || siteToday();
        showReport(day);
      }
    } catch (e) { /* next time */ }
  }

  // ---- live: a crossing at the gate or an unrecorded entry reloads the log
  let reloadTimer = null;
  function soon() {
    if (reloadTimer) return;
    reloadTimer = setTimeout(() => {
      reloadTimer = null;
      if (($("log-date").value || siteToday()) === siteToday()) loadLog(false);
      loadInside();
    }, 300);
  }
  function connect() {
    const source = new EventSource("/api/events/stream");
    source.addEventListener("ready", () => { $("conn").hidden = true; soon(); });
    source.addEventListener("event", (m) => {
      try {
        const e = JSON.parse(m.data);
        if (e.type === "line_crossing" || e.type === "unrecorded_entry") soon();
      } catch (err) { /* not ours */ }
    });
    source.onerror = () => {
      $("conn").hidden = false;
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(connect, 3000);
      }
    };
  }
  function refreshAll() {
    loadLog(false);
    loadInside();
    if (tab === "book") loadBook();
  }

  // ---- a link from the guard page: #alert=<event id> opens that entry's form; #report=<day>
  async function fromHash() {
    const h = location.hash.slice(1);
    const [key, value] = h.split("=");
    if (!value) return;
    if (key === "report") {
      show("report");
      showReport(value);
    } else if (key === "alert" || key === "entry") {
      const r = await api(key === "alert" ? "/api/gate/entries?alert=" + encodeURIComponent(value) : "/api/gate/entries/" + encodeURIComponent(value));
      if (!r.ok) return;
      const v = await r.json();
      const e = key === "alert" ? v.items[0] : v;
      if (e && !e.record && e.direction === "in") openForm(e, null);
    }
  }

  // ---- start
  async function start() {
    try {
      const r = await api("/api/me");
      me = await r.json();
      $("user").textContent = me.name;
    } catch (e) {
      return;
    }
    $("zone").textContent = SITE.zone || "";
    const tick = () => { $("clock").textContent = siteClock(); };
    tick();
    setInterval(tick, 1000);
    $("start-form").hidden = me.role !== "admin";
    $("log-date").value = siteToday();
    $("r-day").value = "";
    renderSelects();
    try {
      const r = await api("/api/cameras");
      if (r.ok) cams = new Map((await r.json()).map((c) => [c.id, c.name || c.id]));
    } catch (e) { /* ids then */ }
    for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => show(b.dataset.tab));
    $("log-date").addEventListener("change", () => loadLog(false));
    $("log-open").addEventListener("change", () => loadLog(false));
    $("log-more").addEventListener("click", () => loadLog(true));
    $("search").addEventListener("submit", loadBook);
    $("start-form").addEventListener("submit", saveStart);
    for (const k of ["resident", "guest", "newcomer"]) $("f-kind-" + k).addEventListener("change", showNewcomer);
    $("record-form").addEventListener("submit", saveForm);
    $("f-cancel").addEventListener("click", closeForm);
    $("f-left").addEventListener("click", markLeft);
    $("x-q").addEventListener("input", renderPicker);
    $("x-cancel").addEventListener("click", () => { $("exit-wrap").hidden = true; exitEntry = null; });
    $("r-show").addEventListener("click", () => showReport($("r-day").value));
    $("r-print").addEventListener("click", () => window.print());
    $("logout").addEventListener("click", async () => {
      try { await fetch("/api/logout", { method: "POST", credentials: "same-origin" }); } catch (e) { /* go anyway */ }
      location.assign("/login");
    });
    window.addEventListener("hashchange", fromHash);
    langListeners.push(() => {
      renderSelects();
      renderLog(true);
      if (tab === "book") loadBook();
      renderReport();
      renderReportList();
      loadInside();
    });
    await Promise.all([loadLog(false), loadInside()]);
    connect();
    fromHash();
    setInterval(loadInside, 30000);
  }
  start();
})();
