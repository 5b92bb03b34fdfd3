// The admin page's list of guard apps: the phones (and screens) with a persistent session on the
// embedded broker, whether each is connected, when it was last heard, and how many alerts one
// out of reach has still to take (it gets them when it connects again, also after a restart of
// the box). Refreshed every 30 s: a phone coming back on its round shows within that. An app
// away can be forgotten (a phone lost or replaced): two presses, as a revert.
Object.assign(DICT.id, {
  apps_title: "Aplikasi penjaga (MQTT)",
  apps_none: "Belum ada aplikasi dengan sesi tetap (clean session mati).",
  apps_external: "Broker MQTT luar menyimpan sesi aplikasi sendiri: lihat daftarnya di broker itu.",
  apps_online: "tersambung", apps_away: "tidak tersambung",
  apps_heard: "terakhir terdengar {time}", apps_user: "akun {user}",
  apps_missed: "{n} peringatan menunggu", apps_no_alerts: "tidak berlangganan peringatan",
  apps_hint: "Aplikasi yang tidak tersambung mendapat peringatan yang terlewat begitu tersambung lagi (sesi yang tidak terdengar lebih dari {days} hari dilupakan saat kotak dinyalakan ulang).",
  apps_forget: "Lupakan", apps_forget_sure: "Yakin? Lupakan {id}",
  apps_forgotten: "{id} dilupakan: peringatan yang menunggu dibuang. Jika HP ini hilang, ganti juga kata sandi akunnya.",
});
Object.assign(DICT.en, {
  apps_title: "Guard apps (MQTT)",
  apps_none: "No app with a persistent session yet (clean session off).",
  apps_external: "An external MQTT broker keeps the apps' sessions itself: see its list there.",
  apps_online: "connected", apps_away: "not connected",
  apps_heard: "last heard {time}", apps_user: "account {user}",
  apps_missed: "{n} alerts waiting", apps_missed_one: "1 alert waiting", apps_no_alerts: "not subscribed to alerts",
  apps_hint: "An app away gets the alerts it missed as soon as it connects again (a session not heard from for over {days} days is forgotten when the box restarts).",
  apps_forget: "Forget", apps_forget_sure: "Sure? Forget {id}",
  apps_forgotten: "{id} forgotten: the alerts waiting for it were dropped. If this phone was lost, change its account's password too.",
});

(function () {
  const list = document.getElementById("app-list");
  const note = document.getElementById("apps-note");
  let last = null;
  let told = "";

  async function forget(id, btn) {
    if (!secondPress(btn, t("apps_forget_sure", { id }), t("apps_forget"))) return;
    btn.disabled = true;
    try {
      const r = await api("/api/admin/apps/" + encodeURIComponent(id), { method: "DELETE" });
      const b = await r.json().catch(() => ({}));
      told = r.ok ? t("apps_forgotten", { id }) : (b.error || String(r.status));
    } catch (e) {
      told = t("offline");
    }
    await load();
  }

  function render() {
    list.textContent = "";
    document.getElementById("apps-result").textContent = told;
    if (!last) return;
    if (last.error) {
      note.textContent = last.error;
      return;
    }
    if (last.broker === "external") {
      note.textContent = t("apps_external");
      return;
    }
    note.textContent = last.apps.length ? t("apps_hint", { days: last.keep_days }) : t("apps_none");
    for (const a of last.apps) {
      const li = el("li", a.online ? "online" : "away");
      li.dataset.client = a.client_id;
      li.appendChild(el("span", "aid", a.client_id));
      const state = a.online ? t("apps_online") : t("apps_away") + " · " + t("apps_heard", { time: a.heard.slice(0, 16).replace("T", " ") });
      li.appendChild(el("span", "astate", state));
      if (a.user) li.appendChild(el("span", "dim", t("apps_user", { user: a.user })));
      if (!a.reads_events) li.appendChild(el("span", "amissed", t("apps_no_alerts")));
      else if (a.missed) li.appendChild(el("span", "amissed", a.missed === 1 && LANG === "en" ? t("apps_missed_one") : t("apps_missed", { n: a.missed })));
      if (!a.online) {
        const b = el("button", "tool forget", t("apps_forget"));
        b.type = "button";
        b.addEventListener("click", () => forget(a.client_id, b));
        li.appendChild(b);
      }
      list.appendChild(li);
    }
  }

  async function load() {
    try {
      const r = await api("/api/admin/apps");
      const b = await r.json().catch(() => ({}));
      last = r.ok ? b : { error: b.error || String(r.status) };
    } catch (e) {
      return; // offline: the list stays as it was
    }
    render();
  }

  langListeners.push(render);
  load();
  setInterval(load, 30000);
})();
