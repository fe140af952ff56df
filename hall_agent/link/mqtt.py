"""The agent's side of the ★ MQTT contract (docs/protocols/MQTT.md).

- Persistent session, MQTT 5 or 3.1.1 (``protocol = "auto"`` falls back when the
  broker refuses 5): link/connect.py.
- Birth/will on ``A/state`` with the persisted boot counter; ``online`` is
  published after subscribing; an explicit ``offline`` before a clean stop.
- Retained state (birth, every device's health) is republished after each reconnect.
- The outbox relay sends events in ``seq`` order from SQLite, resends anything not
  acknowledged after 30 s, replays everything unacknowledged when the central
  comes online or asks ``sync``, and marks events done only on ``A/ack``.
- Inbound payloads are read liberally (link/reading.py) into the strict models; one
  lacking a field needed to act is logged with its topic, counted, and dropped —
  never a crash.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from drivers.backoff import Backoff
from drivers.errors import ConfigError
from drivers.types import DeviceHealth
from hall_agent.contract.config import Config
from hall_agent.contract.mqtt import (
    Ack,
    AgentState,
    AnyRequest,
    CentralCall,
    CentralQueue,
    CentralState,
    CmdResult,
    Command,
    DeviceHealthMsg,
    EventEnvelope,
    Lease,
    NumberReply,
    Satisfaction,
)
from hall_agent.contract.session import no_delay
from hall_agent.contract.topics import Topics
from hall_agent.core.outbox import OutboxEntry
from hall_agent.core.store import Store
from hall_agent.link import reading
from hall_agent.link.breaker import Breakers
from hall_agent.link.connect import MAX_MESSAGE_BYTES, Version
from hall_agent.link.relay import MAX_INFLIGHT, AckQueue, drain

log = logging.getLogger("hall_agent.mqtt")

RECONNECT = Backoff(1.0, ceiling=60.0)  # MQTT.md, Session: back-off 1 s → 60 s
RESEND_AFTER_S = 30.0  # MQTT.md, Event envelope: unacknowledged 30 s → sent again


def now_iso(tz: Any) -> str:
    return datetime.now(tz).isoformat(timespec="milliseconds")


class LinkHandlers:
    """What the link calls into the agent for (set by the agent)."""

    on_call: Callable[[CentralCall], None] = staticmethod(lambda c: None)
    on_lease: Callable[[Lease], None] = staticmethod(lambda lease: None)
    on_queue: Callable[[CentralQueue], None] = staticmethod(lambda q: None)
    on_satisfaction: Callable[[Satisfaction], None] = staticmethod(lambda s: None)
    on_command: Callable[[Command], tuple[bool, str]] = staticmethod(
        lambda c: (False, "not supported"))
    on_mode: Callable[[str], None] = staticmethod(lambda m: None)


def _read_secret(path: str, key: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(f"[mqtt] {key} = {path!r}: cannot read it ({e.strerror}); the "
                          "agent's user needs read access") from None


class MqttLink:
    def __init__(self, cfg: Config, store: Store, boot: int, version: str,
                 handlers: LinkHandlers, mode: Callable[[], str]) -> None:
        assert cfg.mqtt is not None
        self.cfg = cfg
        self.mc = cfg.mqtt
        self.store = store
        self.boot = boot
        self.version = version
        self.h = handlers
        self.mode = mode
        self.t = Topics(cfg.hall.id, cfg.agent.id)
        self.tz = cfg.hall.tz
        self.connected = False
        self._connected_at = 0.0
        self.central_online = False
        self.rejected: Counter[str] = Counter()
        self.late_replies = 0
        # Whether to ask at all, per request type (link/breaker.py; MQTT.md, Requests
        # and their extensions): guarded by _pending_lock.
        self.breakers = Breakers()
        self.numbers = self.breakers.of("ticket.number")
        self.last_error = ""
        self._pending: dict[str, tuple[threading.Event, list[NumberReply]]] = {}
        self._pending_lock = threading.Lock()
        self._devices: dict[str, DeviceHealth] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._relay_thread: threading.Thread | None = None
        self._acks = AckQueue()  # received on paho's thread, written by the relay's
        self.proto = Version(self.mc.protocol)  # link/connect.py: 5, or 3.1.1
        self._swap_lock = threading.Lock()  # a stop waits for a fallback under way
        self.client = self._make_client()

    # ------------------------------------------------------------------ setup

    def _make_client(self) -> mqtt.Client:
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                        client_id=self.cfg.agent.id, **self.proto.client_args())
        c.will_set(self.t.state, json.dumps({"online": False, "boot": self.boot}), qos=1,
                   retain=True)
        if self.mc.username:
            pw = _read_secret(self.mc.password_file, "password_file") \
                if self.mc.password_file else None
            c.username_pw_set(self.mc.username, pw)
        if self.mc.tls_ca or self.mc.tls_cert:
            c.tls_set(ca_certs=self.mc.tls_ca, certfile=self.mc.tls_cert,
                      keyfile=self.mc.tls_key, cert_reqs=ssl.CERT_REQUIRED,
                      tls_version=ssl.PROTOCOL_TLS_CLIENT)
        # paho backs off itself; the policy is ours (MQTT.md, Session: 1 s → 60 s).
        c.reconnect_delay_set(int(RECONNECT.initial), int(RECONNECT.ceiling))
        c.max_inflight_messages_set(MAX_INFLIGHT)  # link/relay.py: the drain rate
        c.on_socket_open = no_delay
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        return c

    def start(self) -> None:
        self.store.outbox.forget_sends()  # sent by an earlier process: due again
        self._connect()
        self._relay_thread = threading.Thread(target=self._relay, name="mqtt-outbox",
                                              daemon=True)
        self._relay_thread.start()

    def _connect(self) -> None:
        self.client.connect_async(self.mc.host, self.mc.port, keepalive=self.mc.keepalive_s,
                                  **self.proto.connect_args())
        self.client.loop_start()

    def _fall_back(self, old: mqtt.Client) -> None:
        """On a thread of its own (paho's cannot stop itself): a new client speaking
        3.1.1 replaces the one the broker refused."""
        old.loop_stop()
        with self._swap_lock:
            if not self._stop.is_set():
                self.client = self._make_client()
                self._connect()

    def stop(self) -> None:
        """Clean stop: say offline ourselves (a will is not sent on a clean disconnect)."""
        with self._swap_lock:
            self._stop.set()
        self._wake.set()
        if self.connected:
            info = self.client.publish(self.t.state, json.dumps(
                {"online": False, "boot": self.boot, "ts": now_iso(self.tz)}), qos=1,
                retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()
        if self._relay_thread is not None:
            self._relay_thread.join(5)

    # ------------------------------------------------------------------ connection

    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, rc: Any,
                    _props: Any) -> None:
        if rc.is_failure:
            self.last_error = f"broker refused the connection: {rc}"
            log.warning("MQTT %s:%d: %s", self.mc.host, self.mc.port, self.last_error)
            if self.proto.fall_back(rc):
                client.disconnect()  # no more tries with 5 by paho itself
                threading.Thread(target=self._fall_back, args=(client,),
                                 name="mqtt-fallback", daemon=True).start()
            return
        self.last_error = ""
        self._connected_at = time.monotonic()
        self.connected = True
        log.info("MQTT %s connected to %s:%d", self.proto.label, self.mc.host, self.mc.port)
        topics: list[tuple[str, Any]] = [(t, 1) for t in (
            self.t.reply, self.t.ack, self.t.lease, self.t.central_state,
            self.t.central_call, self.t.central_queue, self.t.central_satisfaction)]
        if self.proto.v5:
            # Retain-as-published: a command published with retain is recognisable even
            # when it reaches us live, not only when replayed at subscription.
            topics.append((self.t.cmd, SubscribeOptions(qos=1, retainAsPublished=True)))
        else:
            topics.append((self.t.cmd, 1))
        client.subscribe(topics)

    def _on_subscribe(self, client: mqtt.Client, *_: Any) -> None:
        # Birth only after subscribing, so nothing addressed to us is missed.
        self.publish_birth()
        for name, h in list(self._devices.items()):
            self._publish_device(name, h)
        # After a gap anything sent before it and not acknowledged may be lost: send it
        # again (not what this connection has sent already).
        self.replay("reconnect", before=self._connected_at)

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _flags: Any, rc: Any,
                       _props: Any) -> None:
        was = self.connected
        self.connected = False
        # Unknown until the retained central state arrives again after resubscribing;
        # until then nothing is sent (it would only have to be sent again).
        self.central_online = False
        if was:
            log.warning("MQTT disconnected from %s:%d (%s); numbering falls back to the "
                        "lease, events wait in the outbox", self.mc.host, self.mc.port, rc)
            self.h.on_mode(self.mode())

    def publish_birth(self) -> None:
        birth = AgentState(online=True, boot=self.boot, ts=now_iso(self.tz),
                           version=self.version, mode=self.mode())  # type: ignore[arg-type]
        self.client.publish(self.t.state, birth.model_dump_json(), qos=1, retain=True)

    # ------------------------------------------------------------------ devices

    def set_device(self, name: str, h: DeviceHealth) -> None:
        self._devices[name] = h
        if self.connected:
            self._publish_device(name, h)

    def _publish_device(self, name: str, h: DeviceHealth) -> None:
        msg = DeviceHealthMsg(status=h.status.value, detail=h.detail,
                              ts=now_iso(self.tz))
        self.client.publish(self.t.device(name), msg.model_dump_json(), qos=1, retain=True)

    # ------------------------------------------------------------------ numbering

    @property
    def central_available(self) -> bool:
        return self.connected and self.central_online

    def request_number(self, req: AnyRequest, timeout_s: float) -> NumberReply | None:
        """Ask the central for a number (or an appointment check-in, slots or a booking,
        docs/appointments.md); None when no answer came in time, or when requests of
        this type are paused (link/breaker.py)."""
        if not self.central_available:
            return None
        with self._pending_lock:
            breaker = self.breakers.of(req.type)
            if not breaker.may_ask(timeout_s):
                return None
            ev, box = threading.Event(), list[NumberReply]()
            self._pending[req.req_id] = (ev, box)
        try:
            self.client.publish(self.t.request, req.model_dump_json(), qos=1)
            ev.wait(timeout_s)
        finally:
            with self._pending_lock:
                self._pending.pop(req.req_id, None)
                if box:
                    breaker.answered(None if box[0].ok else box[0].error)
                else:
                    breaker.timed_out()
        return box[0] if box else None

    @property
    def central_answering(self) -> bool:
        """False while number requests are skipped because the central did not answer
        them (an extension's requests never change this)."""
        return self.numbers.answering

    @property
    def unanswered(self) -> int:
        """Number requests in a row with no answer in time."""
        return self.numbers.unanswered

    @property
    def not_asked(self) -> int:
        """Number requests numbered from the lease without asking."""
        return self.numbers.not_asked

    # ------------------------------------------------------------------ outbox relay

    def wake(self) -> None:
        self._wake.set()

    def replay(self, why: str, before: float | None = None) -> None:
        """Send again every unacknowledged event sent before ``before`` (monotonic;
        default: now)."""
        n = self.store.outbox.resend(time.monotonic() if before is None else before)
        if n:
            log.info("outbox: replaying %d unacknowledged event(s) (%s)", n, why)
        self._wake.set()

    def _relay(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            try:
                self._acks.write(self.store.outbox)  # also while the central is away
                # Only while the central listens: an event published with nobody there
                # is a wasted send that must be repeated anyway.
                if self.central_available:
                    self._send_due()
            except Exception:
                log.exception("outbox relay failed; retrying")
                time.sleep(1)
        with contextlib.suppress(Exception):
            self._acks.write(self.store.outbox)  # what arrived before the stop

    def _send_due(self) -> None:
        drain(self.store.outbox, self._acks, self._publish_event, RESEND_AFTER_S,
              lambda: self.central_available and not self._stop.is_set())

    def _publish_event(self, r: OutboxEntry) -> mqtt.MQTTMessageInfo:
        env = EventEnvelope(msg_id=r.msg_id, seq=r.seq, boot=self.boot, ts=r.ts,
                            hall=self.cfg.hall.id, agent=self.cfg.agent.id,
                            type=r.type,  # type: ignore[arg-type]  # the model checks
                            offline=r.offline, data=r.data)
        return self.client.publish(self.t.event, env.model_dump_json(), qos=1)

    def _acked(self, ack: Ack) -> None:
        with self._pending_lock:
            self.breakers.acked()  # probably back: the next request probes at once
        # Written by the relay thread, many acks per transaction (link/relay.py): this is
        # paho's network thread, which must not wait for an fsync per ack.
        self._acks.add(ack.acks)
        self._wake.set()

    def pending_events(self) -> int:
        return self.store.outbox.pending_count()

    # ------------------------------------------------------------------ inbound

    def _parse(self, kind: str, msg: mqtt.MQTTMessage) -> Any | None:
        """Read liberally (link/reading.py, MQTT.md "Reading what the other side sends"):
        the strict model, or None when a field needed to act is unusable (logged with
        the topic, counted; a command with a usable ``cmd_id`` is answered instead)."""
        r = reading.read(kind, msg.payload)
        if isinstance(r, reading.Rejected):
            if r.cmd_id is not None:  # "unsupported" is not "lost" (MQTT.md, A/cmd_result)
                log.warning("MQTT %s: command %s refused (%s)", msg.topic, r.cmd_id, r)
                self._cmd_result(r.cmd_id, False, r.why if r.field == "name" else str(r))
                return None
            self.rejected[kind] += 1
            log.warning("MQTT %s: rejected a %s message (%s); %d rejected so far",
                        msg.topic, kind, r, sum(self.rejected.values()))
            return None
        for d in r.dropped:
            log.warning("MQTT %s: %s message used without %s", msg.topic, kind, d)
        return r.msg

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        if len(msg.payload) > MAX_MESSAGE_BYTES:  # never parsed (link/connect.py)
            self.rejected["oversize"] += 1
            log.warning("MQTT %s: dropped a %d-byte message unread (over %d bytes); %d "
                        "rejected so far", msg.topic, len(msg.payload), MAX_MESSAGE_BYTES,
                        sum(self.rejected.values()))
            return
        try:
            self._dispatch(msg)
        except Exception:
            self.rejected["error"] += 1
            log.exception("MQTT %s: handling the message failed", msg.topic)

    def _dispatch(self, msg: mqtt.MQTTMessage) -> None:
        t, topic = self.t, msg.topic
        if not msg.payload:
            # MQTT.md: an empty payload clears a retained topic (a command too): "nothing
            # known", not malformed (a cleared lease keeps the numbers already leased).
            if topic == t.central_state:
                self._central_state(None)
            elif topic == t.central_queue:
                self.h.on_queue(CentralQueue())
            elif topic == t.central_satisfaction:
                self.h.on_satisfaction(Satisfaction(day="", windows={}))
            return
        if topic == t.cmd and msg.retain:
            # MQTT.md: a retained command is stale by definition; never act on it.
            log.warning("MQTT %s: ignored a retained command", topic)
            self.rejected["retained_cmd"] += 1
            return
        kinds: dict[str, tuple[str, Callable[[Any], Any]]] = {
            t.reply: ("reply", self._replied), t.ack: ("ack", self._acked),
            t.lease: ("lease", self.h.on_lease), t.cmd: ("cmd", self._command),
            t.central_state: ("central_state", self._central_state),
            t.central_call: ("call", self.h.on_call), t.central_queue: ("queue", self.h.on_queue),
            t.central_satisfaction: ("satisfaction", self.h.on_satisfaction)}
        if topic in kinds:
            kind, act = kinds[topic]
            m = self._parse(kind, msg)
            if m is not None or kind == "central_state":  # an unusable state: nothing known
                act(m)

    def _replied(self, reply: NumberReply) -> None:
        with self._pending_lock:
            waiting = self._pending.get(reply.req_id)
        if waiting is None:
            # MQTT.md, Numbering: a late answer is dropped; the ticket.issued event
            # tells the central which number the ticket really has.
            self.late_replies += 1
            log.info("MQTT: late number reply %s dropped", reply.req_id)
            return
        waiting[1].append(reply)
        waiting[0].set()

    def _central_state(self, st: CentralState | None) -> None:
        online = bool(st and st.online)
        was, self.central_online = self.central_online, online
        if online != was:
            log.info("central queue is %s", "online" if online else "offline")
            self.h.on_mode(self.mode())
            self.publish_birth()
        if online and not was:
            with self._pending_lock:  # a central back online is asked at once
                self.breakers.reset()
            self.replay("central online")

    def _command(self, cmd: Command) -> None:
        if cmd.name == "sync":
            self.replay("sync command")
            ok, detail = True, f"{self.pending_events()} event(s) pending"
        elif cmd.name == "rebirth":
            self.publish_birth()
            for name, h in list(self._devices.items()):
                self._publish_device(name, h)
            ok, detail = True, "birth and device states republished"
        else:
            try:
                ok, detail = self.h.on_command(cmd)
            except Exception as e:
                log.exception("command %s failed", cmd.name)
                ok, detail = False, f"{type(e).__name__}: {e}"
        self._cmd_result(cmd.cmd_id, ok, detail)

    def _cmd_result(self, cmd_id: str, ok: bool, detail: str) -> None:
        self.client.publish(self.t.cmd_result, CmdResult(cmd_id=cmd_id, ok=ok, detail=detail)
                            .model_dump_json(), qos=1)

    def describe(self) -> DeviceHealth:
        from drivers.types import Health

        where = f"{self.mc.host}:{self.mc.port}"
        pending = self.pending_events()
        bad = sum(self.rejected.values())
        extra = f"; {pending} event(s) waiting" if pending else ""
        extra += f"; {bad} malformed message(s) rejected" if bad else ""
        if not self.connected:
            why = f" ({self.last_error})" if self.last_error else ""
            return DeviceHealth(Health.FAULT, f"broker {where} unreachable{why}; tickets come "
                                              f"from the lease{extra}")
        if not self.central_online:
            return DeviceHealth(Health.DEGRADED, f"connected to {where}, central queue "
                                                 f"offline; tickets come from the lease{extra}")
        with self._pending_lock:
            paused = [b.describe() for b in self.breakers.all()
                      if not b.answering and b is not self.numbers]
        # An extension the central does not answer is told, but numbering is what
        # degrades the link (MQTT.md, Requests and their extensions).
        extra += "".join(f"; {p}" for p in paused)
        if not self.central_answering:
            return DeviceHealth(Health.DEGRADED, f"connected to {where}, "
                                                 f"{self.numbers.describe()}; tickets "
                                                 f"come from the lease{extra}")
        return DeviceHealth(Health.OK, f"connected to {where}, central online{extra}")
