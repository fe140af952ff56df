// A citizen's ticket page: follows the ticket live, large and bilingual.
"use strict";
(() => {
  const { boot, $, text } = Hall;
  const STATES = {
    waiting: ["请耐心等候", "Please wait, you will be called"],
    parked: ["已暂离：准备好后请回到窗口", "Set aside: go back to the window when ready"],
    done: ["已办结，感谢您的耐心", "Finished. Thank you"],
    no_show: ["已过号，请到服务台咨询", "Your number was missed: please ask at the information desk"],
    cancelled: ["此号已作废", "This ticket was cancelled"],
  };
  let last = null;
  function render(t) {
    const m = $("ticket");
    m.dataset.state = t.state;
    text("number", t.number);
    if (t.state === "called" || (t.state === "parked" && t.window)) {
      const main = t.state === "called" ? `请到 ${t.window} 号窗口` : `请回到 ${t.window} 号窗口`;
      text("state-main", main);
      text("state-en", t.state === "called" ? `Please go to window ${t.window}` : `Go back to window ${t.window} when ready`);
    } else {
      const [zh, en] = STATES[t.state] || ["", ""];
      text("state-main", zh); text("state-en", en);
    }
    $("facts").hidden = t.state !== "waiting";
    text("ahead", String(t.ahead));
    const [zh, en] = Hall.waitText(t.est_wait_s);
    $("wait").replaceChildren(zh, document.createElement("br"), Object.assign(document.createElement("span"), {lang: "en", textContent: en}));
    text("updated", `更新于 ${Hall.hallTimeSec()} · updated`);
    if (last && last !== "called" && t.state === "called" && navigator.vibrate) navigator.vibrate([300, 150, 300]);
    last = t.state;
  }
  const stream = Hall.live(`/api/v1/tickets/${encodeURIComponent(boot.token)}/events`, {ticket: t => {
    render(t);
    if (["done", "no_show", "cancelled"].includes(t.state)) stream.close();
  }}, (up, since) => {
    $("link").className = up ? "ok" : "down";
    if (!up) text("updated", `连接中断（${Hall.hallTime(since)} 起），正在重连… · reconnecting`);
  });
  render(boot.ticket);
})();
