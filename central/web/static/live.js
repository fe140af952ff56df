// hall-central's pages: what every page shares (our own code, no libraries).
"use strict";
const Hall = (() => {
  const bootEl = document.getElementById("boot");
  const boot = bootEl ? JSON.parse(bootEl.textContent) : {};
  const tz = boot.tz || "Asia/Shanghai";
  const hm = new Intl.DateTimeFormat("zh-CN", {timeZone: tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23"});
  const hms = new Intl.DateTimeFormat("zh-CN", {timeZone: tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"});

  function $(id) { return document.getElementById(id); }
  function text(id, s) { const e = $(id); if (e) e.textContent = s; return e; }
  // Build elements from text only: nothing the server sends is parsed as HTML.
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v === null || v === undefined) continue;
      if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v);
      else if (k === "lang" || k === "title" || k === "type") e.setAttribute(k, v); else e[k] = v;
    }
    for (const kid of kids) if (kid !== null && kid !== undefined && kid !== false)
      e.append(kid instanceof Node ? kid : String(kid));
    return e;
  }
  function mmss(s) {
    s = Math.max(0, Math.round(s));
    const m = Math.floor(s / 60), r = s % 60;
    if (m >= 60) return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(r).padStart(2, "0")}`;
    return `${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}`;
  }
  function waitText(s) {
    if (!s) return ["马上", "any moment"];
    const m = Math.max(1, Math.round(s / 60));
    return [`约 ${m} 分钟`, `about ${m} min`];
  }
  function uuid() {  // crypto.randomUUID needs a secure context; the hall LAN is plain http
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const x = [...b].map(v => v.toString(16).padStart(2, "0")).join("");
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  }

  // A live stream that says when it is down (since when, hall time) and comes back by
  // itself: EventSource retries a dropped link; a refused one we reopen ourselves.
  function live(url, handlers, onLink) {
    let es = null, lostSince = null, timer = null;
    function open() {
      es = new EventSource(url);
      es.onopen = () => { lostSince = null; onLink(true, null); };
      es.onerror = () => {
        if (lostSince === null) lostSince = new Date();
        onLink(false, lostSince);
        if (es.readyState === EventSource.CLOSED) { clearTimeout(timer); timer = setTimeout(open, 3000); }
      };
      for (const [kind, fn] of Object.entries(handlers))
        es.addEventListener(kind, ev => fn(JSON.parse(ev.data)));
    }
    open();
    return { close() { clearTimeout(timer); if (es) es.close(); } };
  }

  // The chime, made here (WebAudio): two falling tones for a call, three short ones
  // for a recall. A TV's browser may hold sound until the screen is touched once
  // (kiosk mode: chromium --autoplay-policy=no-user-gesture-required).
  let ctx = null;
  function audio() {
    if (!ctx) { const A = window.AudioContext || window.webkitAudioContext; if (!A) return null; ctx = new A(); }
    return ctx;
  }
  function tone(a, f, t0, dur, vol) {
    const o = a.createOscillator(), g = a.createGain();
    o.type = "sine"; o.frequency.value = f;
    g.gain.setValueAtTime(0.0001, t0);
    g.gain.exponentialRampToValueAtTime(vol, t0 + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, t0 + dur);
    o.connect(g).connect(a.destination); o.start(t0); o.stop(t0 + dur + 0.05);
  }
  const chimed = [];  // what was chimed, for the technician's console and the tests
  function chime(recall) {
    chimed.push(recall ? "recall" : "call");
    const a = audio(); if (!a) return false;
    if (a.state === "suspended") a.resume();
    const t = a.currentTime + 0.05;
    if (recall) { [880, 880, 880].forEach((f, i) => tone(a, f, t + i * 0.28, 0.25, 0.35)); }
    else { tone(a, 784, t, 0.9, 0.4); tone(a, 622, t + 0.55, 1.2, 0.4); }
    return a.state === "running";
  }
  function unlock() { const a = audio(); if (a && a.state === "suspended") a.resume(); }
  function soundBlocked() { const a = audio(); return !a || a.state !== "running"; }

  return { boot, tz, $, text, h, mmss, waitText, uuid, live, chime, chimed, unlock, soundBlocked,
           hallTime: d => hm.format(d || new Date()), hallTimeSec: d => hms.format(d || new Date()) };
})();
