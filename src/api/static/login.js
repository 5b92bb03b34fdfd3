// The login page: JSON login, the lockout countdown, then on to the role's home page.
(function () {
  const form = document.getElementById("login");
  const msg = document.getElementById("message");
  const btn = document.getElementById("submit");
  const nameInput = document.getElementById("name");
  const pwInput = document.getElementById("password");
  let shown = null; // [key, vars] so that a language switch translates the message too
  let timer = null;

  function show(key, vars) {
    shown = key ? [key, vars] : null;
    msg.textContent = key ? t(key, vars) : "";
  }
  function showText(text) {
    shown = null;
    msg.textContent = text;
  }
  langListeners.push(() => { if (shown) msg.textContent = t(shown[0], shown[1]); });

  function lockedFor(secs) {
    clearInterval(timer);
    btn.disabled = true;
    let left = Math.max(1, Math.ceil(secs));
    show("locked", { n: left });
    timer = setInterval(() => {
      left -= 1;
      if (left <= 0) {
        clearInterval(timer);
        btn.disabled = false;
        show(null);
      } else {
        show("locked", { n: left });
      }
    }, 1000);
  }

  const err = new URLSearchParams(location.search).get("error");
  if (err === "wrong" || err === "locked" || err === "invalid") show("login_" + err);
  nameInput.focus();

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    show(null);
    btn.disabled = true;
    try {
      const r = await fetch("/api/login", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ name: nameInput.value.trim(), password: pwInput.value }),
      });
      const body = await r.json().catch(() => ({}));
      if (r.ok) {
        location.assign(body.home || "/");
        return;
      }
      if (r.status === 429) {
        lockedFor(Number(r.headers.get("Retry-After")) || body.retry_after || 1);
        return;
      }
      pwInput.value = "";
      pwInput.focus();
      if (r.status === 401) show("login_wrong");
      else if (r.status === 400) show("login_invalid");
      else showText(body.error || String(r.status));
    } catch (e) {
      show("offline");
    }
    btn.disabled = false;
  });
})();
