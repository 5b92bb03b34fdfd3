"use strict";
// Shared by every page: the site (from the server), the dictionary, the language switch, the
// site's clock. Bahasa Indonesia first; English as the switch.
const SITE = JSON.parse(document.getElementById("site").textContent);
const DICT = {
  id: {
    name: "Nama", password: "Kata sandi", login: "Masuk",
    login_wrong: "Nama atau kata sandi salah.",
    login_locked: "Terlalu banyak kata sandi salah. Coba lagi sebentar lagi.",
    login_invalid: "Isi nama dan kata sandi.",
    locked: "Terlalu banyak kata sandi salah. Coba lagi dalam {n} detik.",
    offline: "Server tidak dapat dihubungi.",
    logout: "Keluar akun", gate: "Gerbang", in: "Masuk", out: "Keluar", inside: "Di dalam",
    alerts: "Peringatan", show_all: "Semua kejadian",
    no_alerts: "Belum ada peringatan.", cameras: "Kamera",
    reconnecting: "Sambungan terputus, menyambung ulang…",
    sound_hint: "Ketuk di mana saja untuk menyalakan suara peringatan.",
    sound_on: "Suara: nyala", sound_off: "Suara: mati",
    ack: "Konfirmasi", acked_by: "Dikonfirmasi oleh {user} {time}", ack_failed: "Gagal: {error}",
    line: "garis", zone: "zona", since: "sejak {time}", active: "{n}/{m} aktif",
    online: "Aktif", offline_state: "Mati", connecting: "Menghubungkan", night_mode: "mode malam", noisy_view: "hujan/berisik",
    info: "Info", warning: "Peringatan", alert: "Siaga",
    line_crossing: "Orang melintas", no_mask: "Tanpa masker", curfew_entry: "Masuk saat jam malam",
    intrusion: "Masuk area terlarang", loitering: "Berlama-lama", crowding: "Kerumunan",
    camera_offline: "Kamera mati", camera_online: "Kamera aktif kembali",
    unrecorded_entry: "Masuk malam belum dicatat",
    dir_in: "masuk", dir_out: "keluar",
    forbidden: "Akun ini tidak boleh membuka halaman ini.",
    not_found: "Halaman ini tidak ada.",
    not_built: "Halaman ini belum tersedia.",
    to_home: "Halaman utama", to_login: "Masuk dengan akun lain",
    to_admin: "Atur kamera", to_review: "Rekaman", to_gatebook: "Buku tamu",
    record_now: "Catat", inside_hint: "tamu & pendatang",
  },
  en: {
    name: "Name", password: "Password", login: "Log in",
    login_wrong: "Wrong name or password.",
    login_locked: "Too many wrong passwords. Try again in a moment.",
    login_invalid: "Enter a name and a password.",
    locked: "Too many wrong passwords. Try again in {n} s.",
    offline: "The server cannot be reached.",
    logout: "Log out", gate: "Gate", in: "In", out: "Out", inside: "Inside",
    alerts: "Alerts", show_all: "All events",
    no_alerts: "No alerts yet.", cameras: "Cameras",
    reconnecting: "Connection lost, reconnecting…",
    sound_hint: "Tap anywhere to turn the alert sound on.",
    sound_on: "Sound: on", sound_off: "Sound: off",
    ack: "Acknowledge", acked_by: "Acknowledged by {user} {time}", ack_failed: "Failed: {error}",
    line: "line", zone: "zone", since: "since {time}", active: "{n}/{m} online",
    online: "Online", offline_state: "Offline", connecting: "Connecting", night_mode: "night mode", noisy_view: "rain/noisy",
    info: "Info", warning: "Warning", alert: "Alert",
    line_crossing: "Person crossing", no_mask: "No mask", curfew_entry: "Entry during curfew",
    intrusion: "Restricted area entered", loitering: "Loitering", crowding: "Crowding",
    camera_offline: "Camera offline", camera_online: "Camera back online",
    unrecorded_entry: "Night entry not recorded",
    dir_in: "in", dir_out: "out",
    forbidden: "This account may not open this page.",
    not_found: "There is no such page.",
    not_built: "This page is not available yet.",
    to_home: "Home", to_login: "Log in with another account",
    to_admin: "Cameras", to_review: "Recordings", to_gatebook: "Gate book",
    record_now: "Record", inside_hint: "guests & newcomers",
  },
};

function store(key, value) {
  try {
    if (value === undefined) return localStorage.getItem(key);
    localStorage.setItem(key, value);
  } catch (e) { /* private mode: not remembered */ }
  return null;
}

let LANG = store("ronda.lang") || SITE.language || "id";
if (!DICT[LANG]) LANG = "id";

function t(key, vars) {
  let s = DICT[LANG][key] || DICT.en[key] || key;
  if (vars) for (const k of Object.keys(vars)) s = s.split("{" + k + "}").join(String(vars[k]));
  return s;
}

const langListeners = [];
function applyLang() {
  document.documentElement.lang = LANG;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  const sw = document.getElementById("lang");
  if (sw) sw.textContent = LANG === "id" ? "EN" : "ID";
  for (const f of langListeners) f();
}

// A request to this server with the session cookie; a lapsed session goes back to the login.
async function api(path, opts) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin", headers: { Accept: "application/json" } }, opts || {}));
  if (r.status === 401) {
    location.assign("/login");
    throw new Error("logged out");
  }
  return r;
}

// A button that asks before it acts (revert a version, forget a phone): the first press shows
// `sure` for 6 s, a second press within them returns true (act now); else it shows `label` again.
function secondPress(btn, sure, label) {
  clearTimeout(btn.confirmTimer);
  if (btn.classList.contains("confirm")) return true;
  btn.classList.add("confirm");
  btn.textContent = sure;
  btn.confirmTimer = setTimeout(() => { btn.classList.remove("confirm"); btn.textContent = label; }, 6000);
  return false;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

// The site's wall clock, in its own time zone whatever the phone is set to.
function siteClock() {
  try {
    return new Intl.DateTimeFormat(LANG === "id" ? "id-ID" : "en-GB", {
      timeZone: SITE.timezone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    }).format(new Date()).replace(/\./g, ":");
  } catch (e) {
    const m = /([+-])(\d\d):(\d\d)/.exec(SITE.offset || "+00:00");
    const off = (Number(m[2]) * 60 + Number(m[3])) * 60000 * (m[1] === "-" ? -1 : 1);
    return new Date(Date.now() + off).toISOString().slice(11, 19);
  }
}

(function () {
  const name = document.getElementById("site-name");
  if (name) name.textContent = SITE.name || SITE.id || "";
  const sw = document.getElementById("lang");
  if (sw) sw.addEventListener("click", () => {
    LANG = LANG === "id" ? "en" : "id";
    store("ronda.lang", LANG);
    applyLang();
  });
  const relogin = document.getElementById("relogin");
  if (relogin) relogin.addEventListener("click", async (ev) => {
    ev.preventDefault();
    try { await fetch("/api/logout", { method: "POST", credentials: "same-origin" }); } catch (e) { /* go anyway */ }
    location.assign("/login");
  });
  applyLang();
})();
