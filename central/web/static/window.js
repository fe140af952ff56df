// One window's screen: its number, the ticket it serves, or "暂停服务".
"use strict";
(() => {
  const { boot, $, text } = Hall;
  function render(v) {
    const w = v.windows.find(x => x.window === boot.window);
    if (!w) return;
    document.body.classList.toggle("paused", w.paused);
    if (w.paused) {
      text("w-label", "");
      text("w-number", "暂停服务");
      text("w-reason", `${w.pause_reason || ""} · Paused`);
    } else {
      $("w-label").replaceChildren(w.serving ? "正在办理 · Now serving" : "欢迎 · Welcome");
      text("w-number", w.serving || "—");
      text("w-reason", "");
    }
  }
  function onCall(c) {
    if (c.window !== boot.window) return;
    const e = $("w-state"); e.classList.remove("flash"); void e.offsetWidth; e.classList.add("flash");
  }
  Hall.live("/api/v1/hall/events", {hall: render, call: onCall}, (up, since) => {
    document.body.classList.toggle("stale", !up);
    const l = $("lost"); l.hidden = up;
    if (!up) l.textContent = `连接已断开（${Hall.hallTime(since)} 起）· Connection lost since ${Hall.hallTime(since)}`;
  });
  render(boot.hall);
})();
