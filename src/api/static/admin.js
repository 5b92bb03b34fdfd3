// The admin's line and zone editor: pick a camera, draw and move its lines and zones on its
// live picture, save (checked by the server like `ronda check-config`, written to the file,
// versioned, applied without a restart), see the history with diffs, revert.
//
// Everything is drawn in the picture's own pixels (the canvas has the picture's size and is
// scaled by CSS), so the numbers saved are the camera's pixels, whatever the screen.
Object.assign(DICT.id, {
  adm_title: "Garis dan zona kamera", adm_to_guard: "Pos jaga", adm_area: "Area",
  adm_add_line: "+ Garis", adm_add_zone: "+ Zona", adm_close_zone: "Tutup zona", adm_cancel: "Batal",
  adm_refresh: "Perbarui gambar", adm_mask_check: "Periksa masker di kamera ini",
  adm_unsaved: "Belum disimpan", adm_save: "Simpan", adm_history: "Riwayat versi", adm_close: "Tutup",
  adm_line: "Garis", adm_zone: "Zona", adm_name: "Nama", adm_delete: "Hapus", adm_reverse: "Balik arah",
  adm_curfew: "Jam malam (mis. 22:00-05:00)", adm_no_mask_alert: "Peringatan tanpa masker",
  adm_anchor: "Titik yang dihitung", adm_anchor_bottom_center: "Kaki", adm_anchor_center: "Tengah badan",
  adm_anchor_top_center: "Kepala",
  adm_kind: "Jenis", adm_kind_restricted: "Terlarang", adm_kind_loiter: "Berlama-lama", adm_kind_crowd: "Kerumunan",
  adm_active: "Aktif (mis. 18:00-06:00, kosong = selalu)", adm_loiter_seconds: "Batas berlama-lama (detik)",
  adm_max_people: "Orang paling banyak",
  adm_points: "{n} titik", adm_in: "masuk",
  adm_hint_line1: "Ketuk titik awal garis (A).", adm_hint_line2: "Ketuk titik akhir garis (B). Panah menunjuk arah masuk.",
  adm_hint_zone: "Ketuk sudut-sudut zona. Ketuk titik pertama atau \"Tutup zona\" untuk selesai.",
  adm_hint_idle: "Seret ujung garis atau sudut zona untuk memindahkannya.",
  adm_no_picture: "Belum ada gambar dari kamera ini: {error}",
  adm_size_differs: "Gambar berukuran {w}×{h}, tetapi size kamera di berkas {cw}×{ch}.",
  adm_saving: "Menyimpan…",
  adm_saved: "Tersimpan sebagai versi {version}: {summary}",
  adm_applied: "Diterapkan: {list}",
  adm_no_change: "Tidak ada perubahan untuk disimpan.",
  adm_refused: "Tidak disimpan. Perbaiki yang ditandai merah:",
  adm_stale: "Orang lain sudah menyimpan lebih dulu. Muat ulang editor lalu ulangi perubahan Anda.",
  adm_reload: "Muat ulang", adm_discard: "Perubahan belum disimpan. Klik kamera itu sekali lagi untuk membuangnya.",
  adm_version: "Versi {n}", adm_current: "sekarang", adm_show: "Lihat perubahan", adm_revert: "Kembalikan",
  adm_revert_sure: "Yakin? Kembalikan ke versi {n}", adm_reverted_from: "mengembalikan versi {n}",
  adm_diff_title: "Versi {n} dibanding versi {m}", adm_diff_first: "Versi {n} (yang pertama)",
  adm_same_lines: "… {n} baris sama …", adm_by_file: "berkas",
  adm_reverted: "Dikembalikan ke versi {n}, tersimpan sebagai versi {version}.",
  adm_picture_error: "Gambar tidak dapat dimuat.",
  adm_preview: "Coba garis", adm_previewing: "Menghitung ulang menit-menit terakhir…",
  adm_preview_span: "Dalam {span} terakhir ({frames} gambar), garis-garis ini akan menghitung:",
  adm_preview_counts: "{name}: masuk {in}, keluar {out}",
  adm_preview_none: "Belum ada gambar yang dianalisis dari kamera ini. Coba lagi sebentar lagi.",
  adm_preview_nobody: "Tidak ada yang melintas.",
  adm_preview_refused: "Tidak dapat dicoba. Perbaiki yang ditandai merah:",
  adm_dir_in: "masuk", adm_dir_out: "keluar",
  adm_minutes: "{m} menit {s} detik", adm_seconds: "{s} detik",
  adm_light_day: "terang {b}/255", adm_light_night: "gelap {b}/255: mode malam (gambar dicerahkan)",
  adm_too_dark: "terlalu gelap: berjam-jam ada gerakan, tak seorang pun terdeteksi (periksa lampu/IR kamera)",
  adm_noisy: "gambar berisik: seluruh gambar bergerak (hujan, serangga di depan lampu, kamera goyang); diperiksa tiap detik",
  adm_behind: "kewalahan: detektor tak sempat melihat semua gambar kamera gerbang ini; kurangi analysis_fps kamera atau pindahkan sebagian kamera ke kotak lain",
});
Object.assign(DICT.en, {
  adm_title: "Camera lines and zones", adm_to_guard: "Guard post", adm_area: "Area",
  adm_add_line: "+ Line", adm_add_zone: "+ Zone", adm_close_zone: "Close zone", adm_cancel: "Cancel",
  adm_refresh: "Refresh picture", adm_mask_check: "Check masks on this camera",
  adm_unsaved: "Not saved", adm_save: "Save", adm_history: "Version history", adm_close: "Close",
  adm_line: "Line", adm_zone: "Zone", adm_name: "Name", adm_delete: "Delete", adm_reverse: "Reverse",
  adm_curfew: "Curfew (e.g. 22:00-05:00)", adm_no_mask_alert: "No-mask alert",
  adm_anchor: "Point counted", adm_anchor_bottom_center: "Feet", adm_anchor_center: "Body centre",
  adm_anchor_top_center: "Head",
  adm_kind: "Kind", adm_kind_restricted: "Restricted", adm_kind_loiter: "Loitering", adm_kind_crowd: "Crowd",
  adm_active: "Active (e.g. 18:00-06:00, empty = always)", adm_loiter_seconds: "Loitering after (seconds)",
  adm_max_people: "Most people allowed",
  adm_points: "{n} points", adm_in: "in",
  adm_hint_line1: "Tap where the line starts (A).", adm_hint_line2: "Tap where the line ends (B). The arrow points inward.",
  adm_hint_zone: "Tap the zone's corners. Tap the first point or \"Close zone\" to finish.",
  adm_hint_idle: "Drag a line's end or a zone's corner to move it.",
  adm_no_picture: "No picture from this camera yet: {error}",
  adm_size_differs: "The picture is {w}×{h}, but the camera's size in the file is {cw}×{ch}.",
  adm_saving: "Saving…",
  adm_saved: "Saved as version {version}: {summary}",
  adm_applied: "Applied: {list}",
  adm_no_change: "Nothing changed to save.",
  adm_refused: "Not saved. Fix what is marked red:",
  adm_stale: "Someone else saved first. Reload the editor and make your change again.",
  adm_reload: "Reload", adm_discard: "Changes not saved. Click that camera again to throw them away.",
  adm_version: "Version {n}", adm_current: "now", adm_show: "Show changes", adm_revert: "Revert",
  adm_revert_sure: "Sure? Revert to version {n}", adm_reverted_from: "reverts version {n}",
  adm_diff_title: "Version {n} against version {m}", adm_diff_first: "Version {n} (the first)",
  adm_same_lines: "… {n} unchanged lines …", adm_by_file: "file",
  adm_reverted: "Reverted to version {n}, saved as version {version}.",
  adm_picture_error: "The picture cannot be loaded.",
  adm_preview: "Preview lines", adm_previewing: "Re-counting the last minutes…",
  adm_preview_span: "In the last {span} ({frames} pictures) these lines would have counted:",
  adm_preview_counts: "{name}: in {in}, out {out}",
  adm_preview_none: "No picture of this camera has been analysed yet. Try again in a moment.",
  adm_preview_nobody: "Nobody crossed.",
  adm_preview_refused: "Cannot preview. Fix what is marked red:",
  adm_dir_in: "in", adm_dir_out: "out",
  adm_minutes: "{m} min {s} s", adm_seconds: "{s} s",
  adm_light_day: "brightness {b}/255", adm_light_night: "dark {b}/255: night mode (picture lifted)",
  adm_too_dark: "too dark: motion for hours, nobody detected (check the camera's lamp/IR)",
  adm_noisy: "noisy view: the whole picture moves (rain, insects at the lamp, a shaking camera); looked at every second",
  adm_behind: "behind: the detector cannot look at all of this gate camera's pictures; lower the cameras' analysis_fps or move some cameras to another box",
});
// i18n.js translated the page before these words were known
applyLang();

(function () {
  const $ = (id) => document.getElementById(id);
  const canvas = $("overlay");
  const ctx = canvas.getContext("2d");
  const KIND_COLOR = { restricted: "#ef5350", loiter: "#ffa726", crowd: "#42a5f5" };
  const LINE_COLOR = "#ffca28";

  const S = {
    cameras: [], version: null, cam: null, lines: [], zones: [], maskCheck: false,
    w: 640, h: 360, pictureUrl: null,
    selected: null, // {kind: "line"|"zone", index}
    mode: "idle", draft: [], hover: null, drag: null,
    dirty: false, pendingSwitch: null, issues: [], saving: false, lastResult: null,
  };

  async function body(r) {
    try { return await r.json(); } catch (e) { return {}; }
  }
  function banner(text) {
    $("banner").textContent = text || "";
    $("banner").hidden = !text;
  }

  // ---- cameras
  async function loadCameras(keep) {
    let r;
    try { r = await api("/api/admin/cameras"); } catch (e) {
      if (e.message !== "logged out") banner(t("offline"));
      return false;
    }
    const b = await body(r);
    if (!r.ok) {
      // the editor is off, or the file has problems: say so above everything, each problem
      // on its own line
      const problems = (b.issues || []).map((i) => (i.place ? i.place + ": " : "") + i.message);
      banner([b.error || String(r.status)].concat(problems).join("\n"));
      return false;
    }
    banner("");
    S.cameras = b.cameras;
    S.version = b.version;
    renderCameraList();
    const want = keep || (S.cameras[0] && S.cameras[0].id);
    if (want && S.cameras.some((c) => c.id === want)) openCamera(want, keep === want);
    return true;
  }
  function renderCameraList() {
    const ul = $("camera-list");
    ul.textContent = "";
    for (const c of S.cameras) {
      const li = el("li");
      const b = el("button", c.state || "");
      b.type = "button";
      b.dataset.id = c.id;
      b.setAttribute("aria-current", c.id === S.cam ? "true" : "false");
      b.appendChild(el("span", "cname", c.name || c.id));
      b.appendChild(el("span", "cid", c.id + " · " + (c.role === "gate" ? t("gate") : t("adm_area"))));
      // what the camera sees: how bright its picture is, and whether it is lifted as dark
      if (c.brightness != null) {
        b.appendChild(el("span", "clight" + (c.low_light ? " night" : ""),
          t(c.low_light ? "adm_light_night" : "adm_light_day", { b: Math.round(c.brightness) })));
      }
      // a camera that cannot see people in the dark: the admin must go and look at it
      if (c.too_dark) b.appendChild(el("span", "clight too-dark", t("adm_too_dark")));
      // rain or insects all over the view: motion cannot wake it, it is looked at every second
      if (c.noisy) b.appendChild(el("span", "clight noisy", t("adm_noisy")));
      // a gate camera the detector cannot keep up with: the box has too much to do
      if (c.behind) b.appendChild(el("span", "clight too-dark", t("adm_behind")));
      b.addEventListener("click", () => pickCamera(c.id));
      li.appendChild(b);
      ul.appendChild(li);
    }
  }
  function pickCamera(id) {
    if (id === S.cam) return;
    if (S.dirty && S.pendingSwitch !== id) {
      S.pendingSwitch = id;
      banner(t("adm_discard"));
      return;
    }
    S.pendingSwitch = null;
    banner("");
    openCamera(id, false);
  }
  // Open camera `id` from the loaded list; `same` keeps the picture (after a save).
  function openCamera(id, same) {
    const c = S.cameras.find((x) => x.id === id);
    if (!c) return;
    S.cam = id;
    S.lines = c.lines.map((l) => ({
      name: l.name, was: l.name, points: l.points.map((p) => [p[0], p[1]]), anchor: l.anchor,
      curfew: l.curfew || "", no_mask_alert: l.no_mask_alert,
    }));
    S.zones = c.zones.map((z) => ({
      name: z.name, was: z.name, kind: z.kind, polygon: z.polygon.map((p) => [p[0], p[1]]),
      active: z.active || "", loiter_seconds: z.loiter_seconds, max_people: z.max_people,
    }));
    S.maskCheck = c.mask_check;
    S.selected = null;
    S.issues = [];
    setMode("idle");
    setDirty(false);
    $("editor").hidden = false;
    $("cam-title").textContent = c.name || c.id;
    $("cam-url").textContent = c.id + " · " + c.url;
    $("mask-check").checked = c.mask_check;
    $("mask-check").disabled = c.role !== "gate";
    renderCameraList();
    renderCards();
    showGeneral([]);
    if (!same) {
      $("result").textContent = "";
      loadPicture();
    } else {
      draw();
    }
  }

  // ---- the picture
  function setSize(w, h) {
    S.w = w;
    S.h = h;
    canvas.width = w;
    canvas.height = h;
    $("stage").style.aspectRatio = w + " / " + h;
    draw();
  }
  async function loadPicture() {
    const c = S.cameras.find((x) => x.id === S.cam);
    const id = S.cam;
    const note = $("picture-note");
    note.textContent = "";
    let r;
    try {
      r = await api("/api/admin/cameras/" + encodeURIComponent(id) + "/snapshot.jpg", { cache: "no-store" });
    } catch (e) { r = null; }
    if (id !== S.cam) return;
    const img = $("picture");
    if (!r || !r.ok) {
      const b = r ? await body(r) : {};
      note.textContent = t("adm_no_picture", { error: b.error || t("offline") });
      img.hidden = true;
      const fallback = c && c.size ? c.size : guessSize();
      setSize(fallback[0], fallback[1]);
      return;
    }
    const w = Number(r.headers.get("X-Picture-Width")) || 0;
    const h = Number(r.headers.get("X-Picture-Height")) || 0;
    const blob = await r.blob();
    if (S.pictureUrl) URL.revokeObjectURL(S.pictureUrl);
    S.pictureUrl = URL.createObjectURL(blob);
    img.onload = () => {
      const pw = w || img.naturalWidth;
      const ph = h || img.naturalHeight;
      setSize(pw, ph);
      img.dataset.loaded = "true";
      if (c && c.size && (c.size[0] !== pw || c.size[1] !== ph)) {
        note.textContent = t("adm_size_differs", { w: pw, h: ph, cw: c.size[0], ch: c.size[1] });
      }
    };
    img.onerror = () => { note.textContent = t("adm_picture_error"); };
    img.dataset.loaded = "false";
    img.hidden = false;
    img.src = S.pictureUrl;
  }
  // Without a picture: big enough for every point drawn so far.
  function guessSize() {
    let w = 640, h = 360;
    for (const l of S.lines) for (const p of l.points) { w = Math.max(w, p[0]); h = Math.max(h, p[1]); }
    for (const z of S.zones) for (const p of z.polygon) { w = Math.max(w, p[0]); h = Math.max(h, p[1]); }
    return [Math.ceil(w), Math.ceil(h)];
  }

  // ---- drawing
  function scale() {
    const r = canvas.getBoundingClientRect();
    return r.width > 0 ? canvas.width / r.width : 1;
  }
  function toPicture(ev) {
    const r = canvas.getBoundingClientRect();
    const x = (ev.clientX - r.left) * canvas.width / r.width;
    const y = (ev.clientY - r.top) * canvas.height / r.height;
    return [Math.round(Math.min(Math.max(x, 0), S.w)), Math.round(Math.min(Math.max(y, 0), S.h))];
  }
  function hasIssue(kind, index) {
    return S.issues.some((i) => i[kind] === index);
  }
  function draw() {
    const k = scale();
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.lineJoin = "round";
    ctx.font = Math.round(14 * k) + "px system-ui, sans-serif";
    S.zones.forEach((z, i) => drawZone(z, i, k));
    S.lines.forEach((l, i) => drawLine(l, i, k));
    drawDraft(k);
  }
  function handle(p, k, color) {
    ctx.beginPath();
    ctx.arc(p[0], p[1], 6 * k, 0, Math.PI * 2);
    ctx.fillStyle = color;
    ctx.fill();
    ctx.lineWidth = 2 * k;
    ctx.strokeStyle = "#000";
    ctx.stroke();
  }
  function label(text, x, y, k, color) {
    ctx.lineWidth = 3 * k;
    ctx.strokeStyle = "rgba(0,0,0,.8)";
    ctx.strokeText(text, x, y);
    ctx.fillStyle = color;
    ctx.fillText(text, x, y);
  }
  function drawZone(z, i, k) {
    const pts = z.polygon;
    if (pts.length < 2) return;
    const sel = S.selected && S.selected.kind === "zone" && S.selected.index === i;
    const color = KIND_COLOR[z.kind] || "#ef5350";
    ctx.beginPath();
    ctx.moveTo(pts[0][0], pts[0][1]);
    for (const p of pts.slice(1)) ctx.lineTo(p[0], p[1]);
    ctx.closePath();
    ctx.globalAlpha = sel ? 0.3 : 0.18;
    ctx.fillStyle = color;
    ctx.fill();
    ctx.globalAlpha = 1;
    ctx.lineWidth = (sel ? 4 : 2.5) * k;
    ctx.strokeStyle = hasIssue("zone", i) ? "#ff1744" : color;
    ctx.setLineDash(hasIssue("zone", i) ? [8 * k, 6 * k] : []);
    ctx.stroke();
    ctx.setLineDash([]);
    for (const p of pts) handle(p, k * (sel ? 1.2 : 0.8), sel ? "#fff" : color);
    label(z.name, pts[0][0] + 8 * k, pts[0][1] - 8 * k, k, "#fff");
  }
  function drawLine(l, i, k) {
    const pts = l.points;
    if (pts.length < 2) return;
    const [a, b] = pts;
    const sel = S.selected && S.selected.kind === "line" && S.selected.index === i;
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]);
    ctx.lineTo(b[0], b[1]);
    ctx.lineWidth = (sel ? 5 : 3.5) * k;
    ctx.strokeStyle = hasIssue("line", i) ? "#ff1744" : sel ? "#fff" : LINE_COLOR;
    ctx.stroke();
    // `in` is A->B turned a quarter turn clockwise on screen (y down): (dx, dy) -> (-dy, dx)
    const dx = b[0] - a[0], dy = b[1] - a[1];
    const len = Math.hypot(dx, dy);
    if (len > 0) {
      const nx = -dy / len, ny = dx / len;
      const mx = (a[0] + b[0]) / 2, my = (a[1] + b[1]) / 2;
      const L = 38 * k, tip = [mx + nx * L, my + ny * L];
      ctx.beginPath();
      ctx.moveTo(mx, my);
      ctx.lineTo(tip[0], tip[1]);
      ctx.lineWidth = 3 * k;
      ctx.strokeStyle = "#66bb6a";
      ctx.stroke();
      const ux = dx / len, uy = dy / len, H = 11 * k;
      ctx.beginPath();
      ctx.moveTo(tip[0] + nx * H * 0.6, tip[1] + ny * H * 0.6);
      ctx.lineTo(tip[0] - nx * H * 0.6 + ux * H * 0.7, tip[1] - ny * H * 0.6 + uy * H * 0.7);
      ctx.lineTo(tip[0] - nx * H * 0.6 - ux * H * 0.7, tip[1] - ny * H * 0.6 - uy * H * 0.7);
      ctx.closePath();
      ctx.fillStyle = "#66bb6a";
      ctx.fill();
      label(t("adm_in"), tip[0] + nx * 14 * k - 10 * k, tip[1] + ny * 14 * k + 5 * k, k, "#a5d6a7");
    }
    handle(a, k, sel ? "#fff" : LINE_COLOR);
    handle(b, k, sel ? "#fff" : LINE_COLOR);
    label("A", a[0] + 8 * k, a[1] - 8 * k, k, "#fff");
    label("B", b[0] + 8 * k, b[1] - 8 * k, k, "#fff");
    label(l.name, (a[0] + b[0]) / 2 + 10 * k, (a[1] + b[1]) / 2 - 10 * k, k, LINE_COLOR);
  }
  function drawDraft(k) {
    if (S.mode === "idle" || !S.draft.length) return;
    const pts = S.hover ? S.draft.concat([S.hover]) : S.draft;
    ctx.beginPath();
    ctx.moveTo(pts[0][0], pts[0][1]);
    for (const p of pts.slice(1)) ctx.lineTo(p[0], p[1]);
    ctx.lineWidth = 2.5 * k;
    ctx.strokeStyle = "#fff";
    ctx.setLineDash([8 * k, 6 * k]);
    ctx.stroke();
    ctx.setLineDash([]);
    for (const p of S.draft) handle(p, k, "#fff");
  }

  // ---- editing on the picture
  function dist(p, q) { return Math.hypot(p[0] - q[0], p[1] - q[1]); }
  function segDist(p, a, b) {
    const dx = b[0] - a[0], dy = b[1] - a[1];
    const l2 = dx * dx + dy * dy;
    const u = l2 ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2)) : 0;
    return dist(p, [a[0] + u * dx, a[1] + u * dy]);
  }
  function inside(p, pts) {
    let c = false;
    for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
      if ((pts[i][1] > p[1]) !== (pts[j][1] > p[1])
        && p[0] < pts[j][0] + (p[1] - pts[j][1]) * (pts[i][0] - pts[j][0]) / (pts[i][1] - pts[j][1])) c = !c;
    }
    return c;
  }
  // The handle under `p` (selected item first, then lines over zones).
  function handleAt(p, reach) {
    const order = [];
    if (S.selected) order.push(S.selected);
    S.lines.forEach((_, i) => order.push({ kind: "line", index: i }));
    S.zones.forEach((_, i) => order.push({ kind: "zone", index: i }));
    for (const it of order) {
      const pts = it.kind === "line" ? S.lines[it.index].points : S.zones[it.index].polygon;
      for (let j = 0; j < pts.length; j++) if (dist(p, pts[j]) <= reach) return { kind: it.kind, index: it.index, point: j };
    }
    return null;
  }
  function itemAt(p, reach) {
    for (let i = S.lines.length - 1; i >= 0; i--) {
      const pts = S.lines[i].points;
      if (pts.length === 2 && segDist(p, pts[0], pts[1]) <= reach) return { kind: "line", index: i };
    }
    for (let i = S.zones.length - 1; i >= 0; i--) if (inside(p, S.zones[i].polygon)) return { kind: "zone", index: i };
    return null;
  }
  function reachOf(ev) {
    return (ev.pointerType === "touch" ? 22 : 12) * scale();
  }
  canvas.addEventListener("pointerdown", (ev) => {
    if (ev.button !== undefined && ev.button > 0) return;
    ev.preventDefault();
    const p = toPicture(ev);
    const reach = reachOf(ev);
    if (S.mode === "line") {
      S.draft.push(p);
      if (S.draft.length === 2) finishLine();
      else { setHint(); draw(); }
      return;
    }
    if (S.mode === "zone") {
      if (S.draft.length >= 3 && dist(p, S.draft[0]) <= reach) finishZone();
      else { S.draft.push(p); $("close-zone").hidden = S.draft.length < 3; draw(); }
      return;
    }
    const h = handleAt(p, reach);
    if (h) {
      S.drag = h;
      select({ kind: h.kind, index: h.index });
      try { canvas.setPointerCapture(ev.pointerId); } catch (e) { /* a synthetic pointer */ }
      return;
    }
    select(itemAt(p, reach));
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (S.drag) {
      const p = toPicture(ev);
      const d = S.drag;
      const pts = d.kind === "line" ? S.lines[d.index].points : S.zones[d.index].polygon;
      if (pts[d.point][0] !== p[0] || pts[d.point][1] !== p[1]) {
        pts[d.point] = p;
        d.moved = true;
        updateCoords(d.kind, d.index);
        draw();
      }
    } else if (S.mode !== "idle" && S.draft.length) {
      S.hover = toPicture(ev);
      draw();
    }
  });
  function endDrag() {
    if (S.drag && S.drag.moved) setDirty(true);
    S.drag = null;
  }
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", endDrag);
  canvas.addEventListener("pointerleave", () => { if (S.hover) { S.hover = null; draw(); } });

  function uniqueName(base, list) {
    for (let n = list.length + 1; ; n++) {
      const name = base + "-" + n;
      if (!list.some((x) => x.name === name)) return name;
    }
  }
  function finishLine() {
    S.lines.push({
      name: uniqueName(LANG === "id" ? "garis" : "line", S.lines), was: null, points: S.draft.slice(0, 2),
      anchor: "bottom_center", curfew: "", no_mask_alert: S.maskCheck,
    });
    setMode("idle");
    setDirty(true);
    select({ kind: "line", index: S.lines.length - 1 }, true);
  }
  function finishZone() {
    if (S.draft.length < 3) return;
    S.zones.push({
      name: uniqueName(LANG === "id" ? "zona" : "zone", S.zones), was: null, kind: "restricted",
      polygon: S.draft.slice(), active: "", loiter_seconds: 60, max_people: 5,
    });
    setMode("idle");
    setDirty(true);
    select({ kind: "zone", index: S.zones.length - 1 }, true);
  }
  function setMode(mode) {
    S.mode = mode;
    S.draft = [];
    S.hover = null;
    $("add-line").setAttribute("aria-pressed", mode === "line" ? "true" : "false");
    $("add-zone").setAttribute("aria-pressed", mode === "zone" ? "true" : "false");
    $("cancel-draw").hidden = mode === "idle";
    $("close-zone").hidden = true;
    setHint();
    draw();
  }
  function setHint() {
    const key = S.mode === "line" ? (S.draft.length ? "adm_hint_line2" : "adm_hint_line1")
      : S.mode === "zone" ? "adm_hint_zone" : "adm_hint_idle";
    $("hint").textContent = t(key);
  }
  function select(it, rebuild) {
    S.selected = it;
    if (rebuild) renderCards();
    for (const card of document.querySelectorAll("#items .card")) {
      const on = !!it && card.dataset.kind === it.kind && Number(card.dataset.index) === it.index;
      card.classList.toggle("selected", on);
      if (on && rebuild) {
        const name = card.querySelector("input[name=name]");
        if (name) { name.focus({ preventScroll: true }); name.select(); }
      }
    }
    draw();
  }
  function setDirty(on) {
    S.dirty = on;
    $("dirty").hidden = !on;
    if (!on) S.pendingSwitch = null;
  }

  // ---- the cards: each line and zone's fields
  function field(labelKey, input, name, check) {
    const lab = el("label", check ? "check" : "");
    if (check) {
      lab.appendChild(input);
      lab.appendChild(el("span", "", t(labelKey)));
    } else {
      lab.appendChild(el("span", "", t(labelKey)));
      lab.appendChild(input);
    }
    const wrap = el("div", "field");
    wrap.appendChild(lab);
    const err = el("div", "err");
    err.dataset.field = name;
    wrap.appendChild(err);
    return wrap;
  }
  function textInput(name, value, onInput, placeholder) {
    const i = el("input");
    i.type = "text";
    i.name = name;
    i.value = value == null ? "" : value;
    i.autocomplete = "off";
    i.spellcheck = false;
    if (placeholder) i.placeholder = placeholder;
    i.addEventListener("input", () => { onInput(i.value); setDirty(true); });
    return i;
  }
  function numberInput(name, value, onInput, step) {
    const i = el("input");
    i.type = "number";
    i.name = name;
    i.min = "1";
    i.step = step || "1";
    i.value = value == null ? "" : value;
    i.addEventListener("input", () => { onInput(i.value === "" ? null : Number(i.value)); setDirty(true); });
    return i;
  }
  function selectInput(name, value, options, onChange) {
    const s = el("select");
    s.name = name;
    for (const [v, key] of options) {
      const o = el("option", "", t(key));
      o.value = v;
      s.appendChild(o);
    }
    s.value = value;
    s.addEventListener("change", () => { onChange(s.value); setDirty(true); });
    return s;
  }
  function button(key, onClick) {
    const b = el("button", "tool", t(key));
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }
  function coordsText(kind, item) {
    if (kind === "line") {
      const p = item.points;
      return p.length === 2 ? "A (" + p[0].join(", ") + ") → B (" + p[1].join(", ") + ")" : t("adm_points", { n: p.length });
    }
    return t("adm_points", { n: item.polygon.length }) + ": " + item.polygon.map((p) => "(" + p.join(", ") + ")").join(" ");
  }
  function updateCoords(kind, index) {
    const card = document.querySelector('#items .card[data-kind="' + kind + '"][data-index="' + index + '"]');
    const item = kind === "line" ? S.lines[index] : S.zones[index];
    if (card && item) card.querySelector(".coords").textContent = coordsText(kind, item);
  }
  function card(kind, index, item) {
    const c = el("div", "card " + (kind === "zone" ? "zone-" + item.kind : "line"));
    c.dataset.kind = kind;
    c.dataset.index = String(index);
    if (hasIssue(kind, index)) c.classList.add("has-error");
    c.addEventListener("focusin", () => { if (!S.selected || S.selected.kind !== kind || S.selected.index !== index) select({ kind, index }); });
    const head = el("div", "card-head");
    head.appendChild(el("span", "what", t(kind === "line" ? "adm_line" : "adm_zone")));
    const name = textInput("name", item.name, (v) => { item.name = v; draw(); });
    name.classList.add("grow");
    name.setAttribute("aria-label", t("adm_name"));
    head.appendChild(name);
    if (kind === "line") {
      head.appendChild(button("adm_reverse", () => {
        item.points.reverse();
        setDirty(true);
        updateCoords(kind, index);
        draw();
      }));
    }
    head.appendChild(button("adm_delete", () => {
      (kind === "line" ? S.lines : S.zones).splice(index, 1);
      S.issues = [];
      S.selected = null;
      setDirty(true);
      renderCards();
      draw();
    }));
    c.appendChild(head);
    const nameErr = el("div", "err");
    nameErr.dataset.field = "name";
    c.appendChild(nameErr);
    c.appendChild(el("div", "coords", coordsText(kind, item)));
    const pointsErr = el("div", "err");
    pointsErr.dataset.field = kind === "line" ? "points" : "polygon";
    c.appendChild(pointsErr);
    const fields = el("div", "fields");
    if (kind === "line") {
      fields.appendChild(field("adm_curfew", textInput("curfew", item.curfew, (v) => { item.curfew = v; }, "22:00-05:00"), "curfew"));
      fields.appendChild(field("adm_anchor", selectInput("anchor", item.anchor || "bottom_center",
        [["bottom_center", "adm_anchor_bottom_center"], ["center", "adm_anchor_center"], ["top_center", "adm_anchor_top_center"]],
        (v) => { item.anchor = v; }), "anchor"));
      const nm = el("input");
      nm.type = "checkbox";
      nm.name = "no_mask_alert";
      nm.checked = !!item.no_mask_alert;
      nm.addEventListener("change", () => { item.no_mask_alert = nm.checked; setDirty(true); });
      fields.appendChild(field("adm_no_mask_alert", nm, "no_mask_alert", true));
    } else {
      fields.appendChild(field("adm_kind", selectInput("kind", item.kind,
        [["restricted", "adm_kind_restricted"], ["loiter", "adm_kind_loiter"], ["crowd", "adm_kind_crowd"]],
        (v) => { item.kind = v; renderCards(); draw(); }), "kind"));
      fields.appendChild(field("adm_active", textInput("active", item.active, (v) => { item.active = v; }, "18:00-06:00"), "active"));
      const loiter = field("adm_loiter_seconds", numberInput("loiter_seconds", item.loiter_seconds, (v) => { item.loiter_seconds = v; }), "loiter_seconds");
      loiter.hidden = item.kind !== "loiter";
      fields.appendChild(loiter);
      const crowd = field("adm_max_people", numberInput("max_people", item.max_people, (v) => { item.max_people = v; }), "max_people");
      crowd.hidden = item.kind !== "crowd";
      fields.appendChild(crowd);
    }
    c.appendChild(fields);
    const general = el("div", "err");
    general.dataset.field = "";
    c.appendChild(general);
    return c;
  }
  function renderCards() {
    const box = $("items");
    box.textContent = "";
    S.lines.forEach((l, i) => box.appendChild(card("line", i, l)));
    S.zones.forEach((z, i) => box.appendChild(card("zone", i, z)));
    for (const cd of box.querySelectorAll(".card")) {
      const on = !!S.selected && cd.dataset.kind === S.selected.kind && Number(cd.dataset.index) === S.selected.index;
      cd.classList.toggle("selected", on);
    }
    placeIssues();
  }

  // ---- problems from the server, each next to its field
  function placeIssues() {
    document.querySelector('[data-err="camera-mask_check"]').textContent = "";
    const general = [];
    for (const i of S.issues) {
      const kind = i.line != null ? "line" : i.zone != null ? "zone" : null;
      let target = null;
      if (kind) {
        const cd = document.querySelector('#items .card[data-kind="' + kind + '"][data-index="' + i[kind] + '"]');
        if (cd) {
          target = cd.querySelector('.err[data-field="' + (i.field || "") + '"]') || cd.querySelector('.err[data-field=""]');
        }
      } else if (i.field === "mask_check") {
        target = document.querySelector('[data-err="camera-mask_check"]');
      }
      if (target) {
        target.textContent = target.textContent ? target.textContent + " " + i.message : i.message;
      } else {
        general.push(i);
      }
    }
    showGeneral(general);
  }
  function showGeneral(list) {
    const ul = $("general-errors");
    ul.textContent = "";
    for (const i of list) ul.appendChild(el("li", "", (i.place ? i.place + ": " : "") + i.message));
  }

  // ---- save
  function payload() {
    const num = (v) => (v === null || v === undefined || v === "" || Number.isNaN(v) ? null : v);
    return {
      base_version: S.version,
      mask_check: S.maskCheck,
      lines: S.lines.map((l) => ({
        name: l.name, was: l.was || null, points: l.points, anchor: l.anchor || null,
        curfew: l.curfew.trim() || null, no_mask_alert: !!l.no_mask_alert,
      })),
      zones: S.zones.map((z) => {
        const o = { name: z.name, was: z.was || null, kind: z.kind, polygon: z.polygon, active: z.active.trim() || null };
        if (num(z.loiter_seconds) !== null) o.loiter_seconds = z.loiter_seconds;
        if (num(z.max_people) !== null) o.max_people = Math.round(z.max_people);
        return o;
      }),
    };
  }
  function result(text, cls) {
    const r = $("result");
    r.textContent = "";
    r.className = "result " + (cls || "");
    if (text) r.appendChild(el("div", "", text));
    return r;
  }
  async function save() {
    if (S.saving || !S.cam) return;
    if (S.mode !== "idle") setMode("idle");
    S.saving = true;
    $("save").disabled = true;
    result(t("adm_saving"));
    const id = S.cam;
    try {
      const r = await api("/api/admin/cameras/" + encodeURIComponent(id), {
        method: "PUT",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(payload()),
      });
      const b = await body(r);
      if (r.ok) {
        S.issues = [];
        placeIssues();
        if (!b.changed) {
          result(t("adm_no_change"), "ok");
          setDirty(false);
        } else {
          await loadCameras(id);
          const box = result(t("adm_saved", { version: b.version, summary: b.summary }), b.apply_error ? "warn" : "ok");
          if (b.apply_error) box.appendChild(el("div", "", b.apply_error));
          else if (b.applied && b.applied.length) box.appendChild(el("div", "", t("adm_applied", { list: b.applied.join("; ") })));
          loadVersions();
        }
      } else if (r.status === 400 && b.issues) {
        S.issues = b.issues;
        result(t("adm_refused"), "bad");
        renderCards();
        draw();
      } else if (r.status === 409) {
        const box = result(t("adm_stale"), "bad");
        box.appendChild(el("div", "", b.error || ""));
        const again = button("adm_reload", () => { setDirty(false); loadCameras(id); loadVersions(); });
        box.appendChild(again);
      } else {
        result(b.error || String(r.status), "bad");
      }
    } catch (e) {
      if (e.message !== "logged out") result(t("offline"), "bad");
    } finally {
      S.saving = false;
      $("save").disabled = false;
    }
  }

  // ---- preview: what the drawn lines would have counted over the camera's last minutes
  function span(seconds) {
    const s = Math.round(seconds);
    return s >= 60 ? t("adm_minutes", { m: Math.floor(s / 60), s: s % 60 }) : t("adm_seconds", { s: s });
  }
  function showPreview(b) {
    const box = $("preview-result");
    box.textContent = "";
    box.hidden = false;
    if (!b.frames) {
      box.appendChild(el("p", "", t("adm_preview_none")));
      return;
    }
    box.appendChild(el("p", "", t("adm_preview_span", { span: span(b.seconds), frames: b.frames })));
    for (const l of b.lines) {
      const sec = el("div", "preview-line");
      sec.dataset.line = l.name;
      sec.appendChild(el("h3", "", t("adm_preview_counts", { name: l.name, in: l.in, out: l.out })));
      if (!l.crossings.length) sec.appendChild(el("p", "dim", t("adm_preview_nobody")));
      const row = el("div", "crossings");
      for (const c of l.crossings) {
        const fig = el("figure", "crossing " + c.direction);
        if (c.picture) {
          const img = document.createElement("img");
          img.src = c.picture;
          img.alt = t("adm_dir_" + c.direction) + " " + c.track_id;
          fig.appendChild(img);
        }
        // the site's local time as the server wrote it
        fig.appendChild(el("figcaption", "", t("adm_dir_" + c.direction) + " · " + String(c.at).slice(11, 19)));
        row.appendChild(fig);
      }
      sec.appendChild(row);
      box.appendChild(sec);
    }
  }
  async function preview() {
    if (!S.cam) return;
    if (S.mode !== "idle") setMode("idle");
    $("preview").disabled = true;
    const box = $("preview-result");
    box.hidden = false;
    box.textContent = t("adm_previewing");
    const draft = payload();
    delete draft.base_version;
    try {
      const r = await api("/api/admin/cameras/" + encodeURIComponent(S.cam) + "/preview", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(draft),
      });
      const b = await body(r);
      if (r.ok) {
        S.issues = [];
        placeIssues();
        showPreview(b);
      } else if (r.status === 400 && b.issues) {
        S.issues = b.issues;
        box.textContent = t("adm_preview_refused");
        renderCards();
        draw();
      } else {
        box.textContent = b.error || String(r.status);
      }
    } catch (e) {
      if (e.message !== "logged out") box.textContent = t("offline");
    } finally {
      $("preview").disabled = false;
    }
  }

  // ---- history
  async function loadVersions() {
    let r;
    try { r = await api("/api/admin/versions"); } catch (e) { return; }
    const b = await body(r);
    const ol = $("versions");
    ol.textContent = "";
    if (!r.ok) {
      ol.appendChild(el("li", "err", b.error || String(r.status)));
      return;
    }
    for (const v of b.versions) {
      const li = el("li", v.version === b.current ? "current" : "");
      li.dataset.version = String(v.version);
      const head = el("div", "vhead");
      head.appendChild(el("span", "vnum", t("adm_version", { n: v.version })));
      if (v.version === b.current) head.appendChild(el("span", "", "· " + t("adm_current")));
      head.appendChild(el("span", "", v.saved_at.slice(0, 16).replace("T", " ")));
      head.appendChild(el("span", "", v.saved_by === "file" ? t("adm_by_file") : v.saved_by));
      li.appendChild(head);
      li.appendChild(el("div", "vsum", v.summary));
      if (v.reverted_from) li.appendChild(el("div", "dim", t("adm_reverted_from", { n: v.reverted_from })));
      const btns = el("div", "vbtns");
      const show = button("adm_show", () => showDiff(v.version));
      show.classList.add("show-diff");
      btns.appendChild(show);
      if (v.version !== b.current) {
        const rv = button("adm_revert", () => revert(v.version, rv));
        rv.classList.add("revert");
        btns.appendChild(rv);
      }
      li.appendChild(btns);
      ol.appendChild(li);
    }
  }
  async function revert(n, btn) {
    if (!secondPress(btn, t("adm_revert_sure", { n }), t("adm_revert"))) return;
    btn.disabled = true;
    try {
      const r = await api("/api/admin/versions/" + n + "/revert", { method: "POST" });
      const b = await body(r);
      if (r.ok) {
        setDirty(false);
        await loadCameras(S.cam);
        result(b.changed ? t("adm_reverted", { n, version: b.version }) + " " + b.summary : b.summary, "ok");
      } else {
        result(b.error || String(r.status), "bad");
        if (b.issues) showGeneral(b.issues);
      }
    } catch (e) { /* offline: the list stays */ }
    loadVersions();
  }
  async function showDiff(n) {
    let r;
    try { r = await api("/api/admin/versions/" + n); } catch (e) { return; }
    const b = await body(r);
    const box = $("diff");
    const pre = $("diff-body");
    pre.textContent = "";
    if (!r.ok) {
      $("diff-title").textContent = b.error || String(r.status);
      box.hidden = false;
      return;
    }
    $("diff-title").textContent = b.previous ? t("adm_diff_title", { n, m: b.previous }) : t("adm_diff_first", { n });
    // long runs of unchanged lines are folded to 3 lines of context on each side
    const lines = b.diff;
    const keep = lines.map(() => false);
    lines.forEach((l, i) => {
      if (l.op !== "same") for (let j = Math.max(0, i - 3); j <= Math.min(lines.length - 1, i + 3); j++) keep[j] = true;
    });
    let folded = 0;
    const flush = () => {
      if (folded) pre.appendChild(el("span", "fold", t("adm_same_lines", { n: folded })));
      folded = 0;
    };
    lines.forEach((l, i) => {
      if (l.op === "same" && !keep[i]) { folded += 1; return; }
      flush();
      const mark = l.op === "add" ? "+ " : l.op === "del" ? "- " : "  ";
      pre.appendChild(el("span", l.op, mark + l.text));
    });
    flush();
    box.hidden = false;
  }

  // ---- start
  async function start() {
    try {
      const r = await api("/api/me");
      const me = await r.json();
      $("user").textContent = me.name;
    } catch (e) {
      return;
    }
    $("add-line").addEventListener("click", () => { select(null); setMode(S.mode === "line" ? "idle" : "line"); });
    $("add-zone").addEventListener("click", () => { select(null); setMode(S.mode === "zone" ? "idle" : "zone"); });
    $("close-zone").addEventListener("click", finishZone);
    $("cancel-draw").addEventListener("click", () => setMode("idle"));
    $("refresh").addEventListener("click", loadPicture);
    $("save").addEventListener("click", save);
    $("preview").addEventListener("click", preview);
    $("diff-close").addEventListener("click", () => { $("diff").hidden = true; });
    $("mask-check").addEventListener("change", () => { S.maskCheck = $("mask-check").checked; setDirty(true); });
    $("logout").addEventListener("click", async () => {
      try { await fetch("/api/logout", { method: "POST", credentials: "same-origin" }); } catch (e) { /* go anyway */ }
      location.assign("/login");
    });
    document.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && S.mode !== "idle") setMode("idle");
    });
    window.addEventListener("resize", draw);
    window.addEventListener("beforeunload", (ev) => {
      if (S.dirty) { ev.preventDefault(); ev.returnValue = ""; }
    });
    langListeners.push(() => {
      renderCameraList();
      if (S.cam) renderCards();
      setHint();
      draw();
      loadVersions();
    });
    setHint();
    await loadCameras(null);
    loadVersions();
  }
  start();
})();
