// The clerks' console: render the window's view, send actions, keep it live.
"use strict";
(() => {
  const { boot, $, text, h, mmss } = Hall;
  const W = boot.window, api = `/api/v1/windows/${encodeURIComponent(W)}`;
  const svcName = Object.fromEntries(boot.services.map(s => [s.id, s.name]));
  let view = boot.view, seenAt = Date.now(), busy = false;

  function flags(t) {
    const out = [];
    if (t.priority) out.push(h("span", {class: "flag prio"}, "优先"));
    if (t.for_window) out.push(h("span", {class: "flag to"}, `转入本窗口`));
    else if (t.first) out.push(h("span", {class: "flag to"}, "转入·最前"));
    if (t.offline) out.push(h("span", {class: "flag off", title: "离线取号 numbered offline"}, "离线"));
    return out;
  }

  function render(v) {
    view = v; seenAt = Date.now();
    text("win-services", v.services.map(s => `${s} ${svcName[s] || ""}`).join(" · "));
    $("paused").hidden = !v.paused;
    text("paused-reason", v.pause_reason || "");
    document.body.classList.toggle("is-paused", v.paused);
    const s = v.serving;
    text("serving-number", s ? s.number : "—").classList.toggle("none", !s);
    text("serving-detail", s ? `${svcName[s.service] || s.service}${s.priority ? " · 优先" : ""}` +
      (s.recalls ? ` · 已重呼 ${s.recalls} 次` : "") : (v.paused ? "暂停中" : "空闲，请叫号 · idle"));
    text("next-no", v.next ? `下一位 ${v.next}` : (v.waiting_total ? "" : "无人等候"));
    for (const id of ["btn-recall", "btn-finish", "btn-noshow", "btn-transfer", "btn-park"]) $(id).disabled = !s;
    $("btn-next").disabled = v.paused;
    $("btn-pause").hidden = v.paused; $("btn-resume").hidden = !v.paused;
    text("waiting-total", String(v.waiting_total));
    const body = $("waiting").tBodies[0];
    body.replaceChildren(...v.waiting.map(t => h("tr", {"data-ticket": t.number},
      h("td", {class: "no"}, t.number), h("td", {}, svcName[t.service] || t.service),
      h("td", {class: "waited", "data-waited": t.waited_s}, mmss(t.waited_s)),
      h("td", {}, ...flags(t)),
      h("td", {}, h("button", {class: "small", disabled: v.paused, onclick: () => act("call", {ticket: t.number})}, "呼叫")))));
    if (!v.waiting.length) body.append(h("tr", {}, h("td", {colSpan: 5, class: "empty"}, "没有人在等候 · nobody waiting")));
    $("parked").replaceChildren(...v.parked.map(p => h("li", {"data-ticket": p.number},
      h("b", {}, p.number), ` ${svcName[p.service] || p.service} `,
      h("button", {class: "small", onclick: () => act("call-back", {ticket: p.number})}, "回呼"))));
    if (!v.parked.length) $("parked").append(h("li", {class: "empty"}, "无"));
    const t = v.tally;
    $("tally").replaceChildren(h("b", {}, "今日 Today"),
      ...[["已叫", t.called], ["办结", t.done], ["过号", t.no_show], ["转移", t.transferred],
          ["暂离", t.parked], ["重呼", t.recalls],
          ["平均办理", t.avg_service_s === null ? "—" : mmss(t.avg_service_s)]]
        .map(([k, n]) => h("span", {class: "t"}, `${k} `, h("b", {"data-tally": k}, String(n)))));
    tick();
  }

  function tick() {
    const s = view.serving;
    text("timer", s ? mmss((Date.now() - Date.parse(s.called_at)) / 1000) : "00:00");
    const extra = (Date.now() - seenAt) / 1000;
    for (const td of document.querySelectorAll("td.waited")) td.textContent = mmss(Number(td.dataset.waited) + extra);
  }
  setInterval(tick, 1000);

  function say(msg, bad) {
    const m = $("message"); m.replaceChildren(...msg); m.classList.toggle("bad", !!bad);
  }

  async function act(action, body) {
    if (busy) {  // never queued: a second Enter must not call a second citizen
      say(["上一操作尚未完成，请稍候再按", h("br"),
           h("span", {lang: "en"}, "still busy with the last action: press again in a moment")], true);
      return;
    }
    busy = true; document.body.classList.add("busy");
    try {
      const r = await fetch(`${api}/${action}`, {method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": boot.csrf, "Idempotency-Key": Hall.uuid()},
        body: JSON.stringify(body || {})});
      const j = await r.json().catch(() => ({}));
      if (r.status === 401) { location.reload(); return; }
      if (!r.ok) { say([j.message || `错误 ${r.status}`, h("br"), h("span", {lang: "en"}, j.message_en || "")], true); return; }
      say([]); render(j);
    } catch (e) {
      say(["网络不通，请重试", h("br"), h("span", {lang: "en"}, "network error: try again")], true);
    } finally { busy = false; document.body.classList.remove("busy"); }
  }

  // The transfer dialog: another service's queue or one window, keep place or go first.
  const dT = $("dlg-transfer"), dP = $("dlg-pause");
  function openTransfer() {
    if (!view.serving) return;
    text("transfer-no", view.serving.number);
    $("transfer-services").replaceChildren(...boot.services.map((s, i) => h("label", {class: "choice"},
      h("input", {type: "radio", name: "to", value: `s:${s.id}`, checked: i === 0}), ` ${s.id} ${s.name}`)));
    $("transfer-windows").replaceChildren(...boot.windows.map(w => h("label", {class: "choice"},
      h("input", {type: "radio", name: "to", value: `w:${w}`}), ` ${w} 号窗口`)));
    dT.showModal();
  }
  $("form-transfer").addEventListener("submit", ev => {
    if (ev.submitter && ev.submitter.value !== "ok") return;
    const to = dT.querySelector("input[name=to]:checked"); if (!to) return;
    const [k, v] = [to.value.slice(0, 1), to.value.slice(2)];
    act("transfer", Object.assign(k === "s" ? {service: v} : {window: v}, {first: $("transfer-first").checked}));
  });
  function openPause() { $("pause-other").value = ""; dP.showModal(); }
  $("form-pause").addEventListener("submit", ev => {
    const b = ev.submitter; if (!b || b.value === "cancel") return;
    const reason = b.dataset.reason || $("pause-other").value.trim();
    if (!reason) { ev.preventDefault(); $("pause-other").focus(); return; }
    act("pause", {reason});
  });

  for (const b of document.querySelectorAll("button[data-action]"))
    b.addEventListener("click", () => act(b.dataset.action));
  $("btn-transfer").addEventListener("click", openTransfer);
  $("btn-pause").addEventListener("click", openPause);

  const keys = {Enter: "btn-next", r: "btn-recall", f: "btn-finish", x: "btn-noshow", t: "btn-transfer", p: "btn-park"};
  document.addEventListener("keydown", ev => {
    if (ev.ctrlKey || ev.altKey || ev.metaKey) return;
    if (dP.open && /^[1-9]$/.test(ev.key)) {
      const b = dP.querySelectorAll("button.reason")[Number(ev.key) - 1];
      if (b) { ev.preventDefault(); b.click(); }
      return;
    }
    if (dT.open || dP.open || ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName)) return;
    const k = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
    if (k === "z") { ev.preventDefault(); (view.paused ? $("btn-resume") : $("btn-pause")).click(); return; }
    const id = keys[k];
    if (id && !$(id).disabled && !$(id).hidden) { ev.preventDefault(); $(id).click(); }
  });

  Hall.live(`${api}/events`, {view: render, logout: () => location.reload()}, (up, since) => {
    const l = $("link"); l.classList.toggle("ok", up);
    l.textContent = up ? "● 在线" : `● 连接中断（${Hall.hallTime(since)} 起）`;
  });
  render(view);
})();
