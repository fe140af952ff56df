// The hall TV: the latest call large, recent calls, each window, waiting per service.
"use strict";
(() => {
  const { boot, $, text, h } = Hall;
  let hall = boot.hall, lastCall = hall.calls.length ? hall.calls[0].call_id : null, flashTimer = null;

  function pct(s) {
    if (!s) return null;
    const good = (s.very_satisfied || 0) + (s.satisfied || 0);
    const rated = good + (s.basic || 0) + (s.unsatisfied || 0) + (s.very_unsatisfied || 0);
    return rated ? {rated, good, pct: Math.round(1000 * good / rated) / 10} : null;
  }

  function showNow(c) {
    text("now-number", c ? c.ticket : "—");
    text("now-window", c ? c.window : "—");
    text("now-en", c ? `Number ${c.ticket}, please go to window ${c.window}` : "");
    $("now-recall").hidden = !(c && c.kind === "recall");
  }

  function render(v) {
    hall = v;
    const [now, ...rest] = v.calls;
    showNow(now);
    $("recent").replaceChildren(...rest.slice(0, 5).map(c => h("li", {class: c.kind === "recall" ? "recall" : ""},
      h("b", {}, c.ticket), h("span", {}, ` → ${c.window} 号窗口`),
      c.kind === "recall" ? h("span", {class: "tag"}, "重呼") : null)));
    $("windows").classList.toggle("many", v.windows.length > 9);
    $("windows").classList.toggle("lots", v.windows.length > 20);
    $("windows").replaceChildren(...v.windows.map(w => {
      const s = pct(v.satisfaction[w.window]);
      return h("div", {class: `win${w.paused ? " paused" : ""}`, "data-window": w.window},
        h("div", {class: "w-id"}, `${w.window}`),
        h("div", {class: "w-serving"}, w.paused ? "暂停服务" : (w.serving || "—")),
        h("div", {class: "w-sub"}, w.paused ? (w.pause_reason || "") : (w.serving ? "正在办理" : "空闲")),
        h("div", {class: "w-sat"}, s ? `满意 ${s.pct}%（${s.good}/${s.rated}）` : "今日暂无评价"));
    }));
    $("services").replaceChildren(...v.services.map(s => h("div", {class: `svc${s.open_now ? "" : " closed"}`},
      h("div", {class: "s-name"}, `${s.service} ${s.name}`), h("div", {class: "s-en", lang: "en"}, s.name_en),
      h("div", {class: "s-wait"}, h("b", {}, String(s.waiting)), " 人等候"),
      h("div", {class: "s-est"}, s.open_now ? (s.waiting ? `约 ${Math.max(1, Math.round(s.est_wait_s / 60))} 分钟` : "随到随办") : "已停止取号"))));
    const n = $("notice"); n.hidden = !v.notice; n.textContent = v.notice || "";
  }

  function onCall(c) {
    if (c.call_id === lastCall) return;
    lastCall = c.call_id;
    showNow(c);
    const box = $("latest");
    box.classList.remove("flash"); void box.offsetWidth; box.classList.add("flash");
    box.dataset.callId = c.call_id;
    clearTimeout(flashTimer); flashTimer = setTimeout(() => box.classList.remove("flash"), 8000);
    Hall.chime(c.kind === "recall");
    $("sound").hidden = !Hall.soundBlocked();
  }

  function clock() { text("clock", Hall.hallTime()); }
  setInterval(clock, 1000); clock();
  document.addEventListener("pointerdown", () => { Hall.unlock(); setTimeout(() => { $("sound").hidden = !Hall.soundBlocked(); }, 300); }, {once: true});

  Hall.live("/api/v1/hall/events", {call: onCall, hall: render}, (up, since) => {
    document.body.classList.toggle("stale", !up);
    const l = $("lost"); l.hidden = up;
    if (!up) l.textContent = `连接已断开（${Hall.hallTime(since)} 起），正在重连… · Connection lost since ${Hall.hallTime(since)}`;
  });
  render(hall);
})();
