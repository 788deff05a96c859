"""The supervisor process: owns the rings, spawns and watches the actors, routes messages.

One thread, one poll loop. Restart decisions come from the pure policy in
:mod:`streamasr.supervisor.restart_policy`; this module only carries out its actions
(spawn, signal, publish, exit) and feeds it events (spawned, ready, heartbeat, exited, tick)
stamped with its :class:`~streamasr.supervisor.awake.AwakeClock`, so a supervisor that was
itself stopped does not take its actors' queued heartbeats for silence.
Transcripts from the actors are numbered, de-duplicated, masked, merged (one partial stream
per utterance) and published on the PUB socket through a
:class:`~streamasr.supervisor.streams.StreamBook`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from types import FrameType
from typing import IO, Any

import zmq

from streamasr.actors import messages as m
from streamasr.actors.errors import ProtocolError, StreamAsrError
from streamasr.actors.spec import ActorSpec
from streamasr.ringbuf import Ring
from streamasr.supervisor import restart_policy as rp
from streamasr.supervisor import restart_types as rt
from streamasr.supervisor.adaptive import ChunkController
from streamasr.supervisor.awake import POLL_S, AwakeClock
from streamasr.supervisor.config import Config, resolve_sample
from streamasr.supervisor.dynamic import DynamicStreams
from streamasr.supervisor.mask import WordMask, command_words
from streamasr.supervisor.paths import InstancePaths
from streamasr.supervisor.plan import Plan, build, probe
from streamasr.supervisor.processes import Child, popen_actor
from streamasr.supervisor.sdnotify import Notifier
from streamasr.supervisor.sockets import SupervisorSockets
from streamasr.supervisor.standby import Standby
from streamasr.supervisor.status import StatusBuilder
from streamasr.supervisor.streams import StreamBook
from streamasr.supervisor.wake_book import WakeBook

log = logging.getLogger(__name__)


#: A restart taking more than this share of the rings' length is warned about.
BRIDGE_WARN_SHARE = 0.5

#: Callback receiving every published message (``up`` prints from it).
EventSink = Callable[[str, Any], None]


class AlreadyRunning(StreamAsrError):
    """Another supervisor of the same instance is alive."""


class Supervisor:
    """Runs one pipeline until it is stopped, its source ends or its policy gives up."""

    def __init__(
        self,
        cfg: Config,
        *,
        sink: EventSink | None = None,
        exit_on_eos: bool = False,
        log_level: str = "WARNING",
        actor_log: IO[bytes] | None = None,
    ) -> None:
        """Prepare (nothing starts until :meth:`run`).

        Args:
            cfg: the validated configuration.
            sink: called with ``(topic, message)`` for every published message.
            exit_on_eos: stop with exit code 0 once a file/stdin source has been drained.
            log_level: logging level of the actor processes.
            actor_log: where actors' stderr goes (None: inherit).
        """
        cfg = resolve_sample(cfg)
        self.cfg = cfg
        self.paths = InstancePaths.for_instance(cfg.supervisor.instance, cfg.supervisor.runtime_dir)
        self.sink = sink
        self.exit_on_eos = exit_on_eos
        self.log_level = log_level
        self.actor_log = actor_log
        self.book = StreamBook(
            cfg.events.history, mask=WordMask(cfg.display, keep=command_words(cfg))
        )
        self.children: dict[str, Child] = {}
        self.rings: dict[str, Ring] = {}
        self.eos_sent: dict[str, m.EndOfStream] = {}
        self.gaps: dict[str, list[m.Gap]] = {}
        self.wakes = WakeBook()
        self.restart_s: dict[str, float] = {}  # last restart duration per actor, seconds
        self.bridge_warnings = 0
        self.exit_reason = ""
        self.protocol_errors = 0
        self._stop_signal: str | None = None
        self._started = False
        self._ended: set[str] = set()
        self._plan: Plan | None = None
        self.dynamic: DynamicStreams | None = None
        self.standby: Standby | None = None
        self.pubs: list[zmq.Socket[bytes]] = []
        self.sockets: SupervisorSockets | None = None
        self.identity: dict[str, str] = {}  # actor id -> ZeroMQ identity (promoted spares)
        self.alias: dict[str, str] = {}  # ZeroMQ identity -> actor id
        self.notifier = Notifier()
        self.chunk: ChunkController | None = None
        if cfg.audio.adaptive_chunk:
            self.chunk = ChunkController.create(
                cfg.audio.chunk_ms, cfg.audio.latency_budget_ms, time.monotonic()
            )
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._owns_root = False
        self.clock = self._awake_clock()

    def _awake_clock(self) -> AwakeClock:
        """A fresh awake clock: a gap of more than one heartbeat interval between two of the
        loop's reads is the supervisor's own stall, not its actors' silence."""
        return AwakeClock(self.cfg.supervisor.heartbeat_interval_s, POLL_S)

    # ------------------------------------------------------------------ setup / teardown
    def _prepare(self) -> Plan:
        self.paths.make_root()
        pid = self.paths.running_pid()
        if pid is not None and pid != os.getpid():
            raise AlreadyRunning(
                f"instance {self.paths.instance!r} is already running (pid {pid}); "
                "stop it with `streamasr-supervisor down`"
            )
        self._owns_root = True  # checked and not another supervisor's: teardown may clean it
        for item in self.paths.clean_stale():
            log.info("removed stale %s", item)
        formats = {src.stream_id: probe(src) for src in self.cfg.sources()}
        if self.cfg.assistant.enabled:
            from streamasr.actors.assistant.playback import check_output

            check_output(self.cfg.tts)  # no output device: one line now, not a restart loop
        plan = build(self.cfg, self.paths, os.getpid(), formats, self.log_level)
        self.dynamic = DynamicStreams(self.cfg, self.paths, self._send, plan.workers())
        if self.cfg.supervisor.hot_standby:
            self.standby = Standby("inference", plan.actor("inference"), self._popen)
        self.paths.pid_file.write_text(str(os.getpid()))
        self.rings.update((r.name, r.create()) for r in plan.rings)
        return plan

    def _open_sockets(self) -> None:
        self._ctx = zmq.Context()
        self.sockets = SupervisorSockets.open(self._ctx, self.paths, self.cfg.events)
        self.router, self.pubs = self.sockets.router, self.sockets.pubs

    def _teardown(self) -> None:
        if self.standby is not None:
            self.standby.stop()
        for child in self.children.values():
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait()
        if self.dynamic is not None:
            self.dynamic.close_all()
        for ring in self.rings.values():
            ring.close()
            ring.unlink()
        self.rings.clear()
        if self.sockets is not None:
            self.sockets.close()
        if self._ctx is not None:
            self._ctx.destroy(linger=0)
            self._ctx = None
        if self._owns_root:  # never clean a refused directory, nor a running instance's
            self.paths.clean_stale()
            self.paths.pid_file.unlink(missing_ok=True)
        self.notifier.close()

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        """Start everything, supervise until done, clean up; return the exit code."""
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in old:
            signal.signal(s, self._on_signal)
        try:
            self._plan = self._prepare()
            self._open_sockets()
            spec = rt.SupervisorSpec(
                children=self._plan.children,
                strategy=rt.Strategy(self.cfg.supervisor.strategy),
                intensity=rt.Intensity(
                    self.cfg.supervisor.max_restarts, self.cfg.supervisor.period_s
                ),
            )
            self.status = StatusBuilder(self, self._plan)
            state = rp.initial_state(spec)
            self.clock = self._awake_clock()  # the setup above is no stall
            return self._loop(state)
        finally:
            self._teardown()
            for s, h in old.items():
                signal.signal(s, h)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop_signal = signal.Signals(signum).name

    def _loop(self, state: rt.SupervisorState) -> int:
        state = self._apply(state, rt.Start())
        next_status = time.monotonic()
        while True:
            if self._stop_signal is not None:
                state = self._apply(state, rt.StopRequested(f"{self._stop_signal} received"))
                self._stop_signal = None
            state = self._reap(state)
            if self.standby is not None and state.all_ready_published:
                self.standby.ensure()
            if state.phase is rt.Phase.DONE:
                return state.shutdown_exit_code or 0
            deadline = rp.next_deadline(state)
            wait = (
                POLL_S if deadline is None else min(POLL_S, max(0.0, deadline - self.clock.now()))
            )
            if self.router.poll(int(wait * 1000)):
                state = self._drain_router(state)
            state = self._apply(state, rt.Tick())
            self._report_stalls()
            if state.phase is rt.Phase.DONE:
                return state.shutdown_exit_code or 0
            healthy = state.phase is rt.Phase.RUNNING and all(
                c.state is rt.ChildState.RUNNING for c in state.children
            )
            self.notifier.watchdog(healthy)
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + self.cfg.supervisor.status_interval_s
                self._adapt_chunk()
                if state.all_ready_published:
                    self.notifier.status(self.status.summary(state))
                self._publish("status", m.StatusReply(self.status.build(state)))
            self._state = state

    def _apply(self, state: rt.SupervisorState, event: rt.Event) -> rt.SupervisorState:
        """Feed one event to the policy at awake-clock time; carry out its actions (recursively)."""
        self._state = state
        state, actions = rp.step(state, event, self.clock.now())
        for action in actions:
            if isinstance(action, rt.Spawn):
                pid = self._spawn(action.id)
                state = self._apply(state, rt.Spawned(action.id, pid))
            elif isinstance(action, rt.Kill):
                child = self.children.get(action.id)
                if child is not None and child.proc.poll() is None:
                    child.proc.send_signal(action.signal)
            elif isinstance(action, rt.Publish):
                self._notify_lifecycle(action.topic, dict(action.fields), state)
                self._publish(
                    action.topic, m.Lifecycle(action.topic, dict(action.fields), time.time_ns())
                )
            elif isinstance(action, rt.Log):
                log.log(action.level, "%s", action.message)
            elif isinstance(action, rt.Shutdown):
                self.exit_reason = self._explain(action.reason)
        self._state = state
        return state

    def _report_stalls(self) -> None:
        """Log and publish (``supervisor.stalled``) each stall the awake clock saw."""
        for gap_s in self.clock.take_stalls():
            log.warning(
                "supervisor did not run for %.2f s (stopped, suspended or starved of CPU);"
                " its actors' silence meanwhile is not held against them",
                gap_s,
            )
            self._publish(
                "supervisor.stalled",
                m.Lifecycle("supervisor.stalled", {"stalled_s": gap_s}, time.time_ns()),
            )

    def _explain(self, reason: str) -> str:
        """``reason`` plus the error the actor it names reported before exiting, if any."""
        for actor_id, child in self.children.items():
            if child.errors and reason.startswith(f"actor {actor_id} "):
                return f"{reason} ({child.errors[-1]})"
        return reason

    def _adapt_chunk(self) -> None:
        """Feed the chunk policy the inference actor's load; apply a new chunk size."""
        if self.chunk is None or self._plan is None:
            return
        beats = [
            c.heartbeat.gauges
            for w in self._plan.workers()
            if (c := self.children.get(w)) is not None and c.heartbeat is not None
        ]
        new = self.chunk.observe_workers(beats, time.monotonic())
        if new is None:
            return
        assert self._plan is not None
        for a in self._plan.actors:
            if a.kind in ("capture", "feature"):
                self._send(a.actor_id, m.SetChunk(new))
        self._publish(
            "supervisor.chunk_changed",
            m.Lifecycle("supervisor.chunk_changed", {"chunk_ms": new}, time.time_ns()),
        )

    def _notify_lifecycle(
        self, topic: str, fields: dict[str, Any], state: rt.SupervisorState
    ) -> None:
        if topic.endswith(".ready") and int(fields.get("incarnation") or 0) > 1:
            self._check_bridge(topic.split(".")[1], float(fields.get("startup_s") or 0.0))
        if topic == "supervisor.ready":
            self.notifier.ready(self.status.summary(state))
        elif topic == "supervisor.stopping":
            self.notifier.stopping(state.shutdown_reason or "stop requested")

    def _check_bridge(self, actor_id: str, restart_s: float) -> None:
        """Warn when a restart took close to what the rings can bridge (their length)."""
        self.restart_s[actor_id] = restart_s
        bridge_s = self.cfg.audio.ring_s
        if restart_s > BRIDGE_WARN_SHARE * bridge_s:
            log.warning(
                "actor %s took %.1f s to restart; the rings bridge %.1f s of audio: "
                "raise [audio] ring_s or use hot_standby, or audio will be lost",
                actor_id,
                restart_s,
                bridge_s,
            )
            self.bridge_warnings += 1
            self._publish(
                "supervisor.ring_bridge_warning",
                m.Lifecycle(
                    "supervisor.ring_bridge_warning",
                    {"actor": actor_id, "restart_s": restart_s, "ring_s": bridge_s},
                    time.time_ns(),
                ),
            )

    def _reap(self, state: rt.SupervisorState) -> rt.SupervisorState:
        """Feed the policy an Exited event for every child process that has ended."""
        for actor_id, child in list(self.children.items()):
            rc = child.proc.poll()
            if rc is not None and not child.reaped:
                child.reaped = True
                state = self._end_owned_streams(state, actor_id)
                state = self._apply(state, rt.Exited(actor_id, rc, child.proc.pid))
        return state

    # ------------------------------------------------------------------ processes
    def _spawn(self, actor_id: str) -> int:
        assert self._plan is not None
        spare = self.standby.take() if self.standby and self.standby.actor_id == actor_id else None
        if spare is not None:  # hot standby: promote the warm spare instead of a cold start
            self.children[actor_id] = Child(spare.proc)
            self.identity[actor_id] = spare.identity
            self.alias[spare.identity] = actor_id
            self._send(actor_id, m.Promote())
            log.info("promoted standby %s (pid %d) to %s", spare.identity, spare.proc.pid, actor_id)
            return spare.proc.pid
        self.identity.pop(actor_id, None)
        proc = self._popen(self._plan.actor(actor_id))
        self.children[actor_id] = Child(proc)
        log.info("spawned %s pid %d", actor_id, proc.pid)
        return proc.pid

    def _popen(self, spec: ActorSpec) -> subprocess.Popen[bytes]:
        """Start an actor process from its spec."""
        return popen_actor(spec, self.paths.spec_file(spec.actor_id), self.actor_log)

    def _send(self, actor_id: str, msg: Any) -> None:
        ident = self.identity.get(actor_id, actor_id)
        try:
            self.router.send_multipart([ident.encode(), *m.pack(msg.KIND, msg)], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.warning("could not send %s to %s: %s", msg.KIND, actor_id, exc)

    def _publish(self, topic: str, msg: Any) -> None:
        frames = m.pack(topic, msg)
        for pub in self.pubs:
            with contextlib.suppress(zmq.Again):
                pub.send_multipart(frames, zmq.NOBLOCK)
        if self.sink is not None:
            self.sink(topic, msg)

    # ------------------------------------------------------------------ messages
    def _drain_router(self, state: rt.SupervisorState) -> rt.SupervisorState:
        for _ in range(1000):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            ident, body = frames[0], frames[1:]
            try:
                _, msg = m.unpack(body)
            except ProtocolError as exc:
                self._protocol_error("dropped message from %r: %s", ident[:32], exc)
                continue
            state = self._handle(state, ident, msg)
        return state

    def _handle(self, state: rt.SupervisorState, ident: bytes, msg: Any) -> rt.SupervisorState:
        sender = ident.decode(errors="replace")
        if self.standby is not None and self.standby.owns(sender):
            self.standby.on_message(msg)
            return state
        sender = self.alias.get(sender, sender)
        child = self.children.get(sender)
        if isinstance(msg, m.Heartbeat) and child is not None:
            child.heartbeat = msg
            return self._apply(state, rt.Heartbeat(sender, pid=msg.pid))
        if isinstance(msg, m.Ready) and child is not None:
            state = self._apply(state, rt.Ready(sender, msg.pid))
            self._on_ready(sender, state)
            return state
        if isinstance(msg, m.Transcript) and child is not None:
            self._on_transcript(sender, msg)
        elif isinstance(msg, (m.WakeDetected, m.WakeEnded)) and child is not None:
            self._on_wake(msg)
        elif isinstance(msg, (m.Intent, m.ActionDone, m.Reply)) and child is not None:
            self._publish(m.assistant_topic(msg), msg)
        elif isinstance(msg, m.WakeMute) and child is not None:
            worker = self._worker_of(msg.stream_id)
            if worker is not None:
                self._send(worker, msg)
        elif isinstance(msg, m.SpeechPaused) and child is not None:
            if self.cfg.refine.finals == "accurate":
                self._send("refine", msg)  # the second pass may transcribe it early
        elif isinstance(msg, m.RefineJob) and child is not None:
            if self.book.add_job(msg):
                self._send("refine", msg)
        elif isinstance(msg, m.EndOfStream) and child is not None:
            return self._on_eos(state, sender, msg)
        elif isinstance(msg, m.OpenStream) and child is not None:
            assert self.dynamic is not None and self._plan is not None
            reply = self.dynamic.open(sender, msg, set(self._plan.chains))
            self._send(sender, reply)
        elif isinstance(msg, m.Gap) and child is not None:
            self.gaps.setdefault(msg.stream_id, []).append(msg)
            del self.gaps[msg.stream_id][:-100]
            log.warning(
                "stream %s: %d frames not captured (%s)",
                msg.stream_id,
                msg.end_frame - msg.start_frame,
                msg.reason,
            )
            self._publish(f"stream.{msg.stream_id}.gap", msg)
        elif isinstance(msg, m.ActorError) and child is not None:
            child.errors.append(msg.message)
            self.exit_reason = f"{sender}: {msg.message}"
            log.error("actor %s: %s", sender, msg.message)
        elif isinstance(msg, m.StatusRequest):
            self.router.send_multipart(
                [ident, *m.pack("status", m.StatusReply(self.status.build(state)))]
            )
        elif isinstance(msg, m.HistoryRequest):
            self.router.send_multipart(
                [ident, *m.pack("history", m.HistoryReply(self.book.history()))]
            )
        elif isinstance(msg, m.StopRequest):
            self.router.send_multipart([ident, *m.pack("stop", m.Stop("stopping"))])
            return self._apply(state, rt.StopRequested(msg.reason))
        else:
            self._protocol_error("unexpected %s from %r", msg.KIND, sender[:32])
        return state

    def _protocol_error(self, fmt: str, *args: Any) -> None:
        """Count a bad message; log the first ten, then every hundredth (no log flooding)."""
        self.protocol_errors += 1
        n = self.protocol_errors
        if n <= 10 or n % 100 == 0:
            log.warning(fmt + " (%d protocol errors so far)", *args, n)

    def _on_ready(self, actor_id: str, state: rt.SupervisorState) -> None:
        """Re-send what a (re)started actor needs; start capture once all are Ready."""
        if self.dynamic is not None:
            self.dynamic.attach_all(actor_id)
        if actor_id == "refine":
            for job in self.book.pending_jobs():
                self._send("refine", job)
        for key, eos in self.eos_sent.items():
            if key.split("/")[0] == actor_id:
                self._send_eos(actor_id, eos)
        assert self._plan is not None
        kind = self._plan.actor(actor_id).kind
        if self.chunk is not None and kind in ("capture", "feature"):
            self._send(actor_id, m.SetChunk(self.chunk.chunk_ms))
        all_ready = all(c.state is rt.ChildState.RUNNING for c in state.children)
        if all_ready and not self._started:
            self._started = True
            for cap in self._plan.captures():
                self._send(cap, m.Start())
        elif self._started and actor_id in self._plan.captures():
            self._send(actor_id, m.Start())  # a restarted capture resumes at once

    def _on_transcript(self, sender: str, msg: m.Transcript) -> None:
        msg = self.wakes.transcript(msg)
        out = self.book.publish(msg, from_refine=(sender == "refine"))
        if msg.passno == 1 and not msg.is_final and self.cfg.refine.accurate_partials():
            self._send("refine", msg)  # accurate partials: even an unpublished one extends it
        if out is None:
            return
        self.status.observe(out)
        self._publish(f"transcript.{out.stream_id}", out)

    def _on_wake(self, msg: m.WakeDetected | m.WakeEnded) -> None:
        """Publish a wake event once (a replacement process may detect a phrase again)."""
        if isinstance(msg, m.WakeDetected):
            det = self.wakes.detected(msg)
            if det is not None:
                self._publish(f"wake.{msg.stream_id}.detected", det)
        elif (ended := self.wakes.ended(msg)) is not None:
            self._publish(f"wake.{msg.stream_id}.ended", ended)

    def _worker_of(self, stream_id: str) -> str | None:
        """The inference worker that decodes ``stream_id`` (None: no such stream)."""
        assert self._plan is not None
        workers = set(self._plan.workers())
        return next((a for a in self._chain(stream_id) or () if a in workers), None)

    def _chain(self, stream_id: str) -> tuple[str, ...] | None:
        assert self._plan is not None and self.dynamic is not None
        return self._plan.chains.get(stream_id) or self.dynamic.chain(stream_id)

    def _on_eos(
        self, state: rt.SupervisorState, sender: str, msg: m.EndOfStream
    ) -> rt.SupervisorState:
        assert self._plan is not None and self.dynamic is not None
        chain = self._chain(msg.stream_id)
        if chain is None and msg.end_frame == 0:
            log.debug("stream %s: %s gave up an open that was refused", msg.stream_id, sender)
            return state
        if chain is None or sender not in chain:
            self.protocol_errors += 1
            return state
        i = chain.index(sender)
        nxt = chain[i + 1] if i + 1 < len(chain) else None
        log.info("stream %s: end of stream from %s -> %s", msg.stream_id, sender, nxt)
        if nxt is not None:
            self.eos_sent[f"{nxt}/{msg.stream_id}"] = msg
            self._send_eos(nxt, msg)
            return state
        for key in [k for k in self.eos_sent if k.endswith(f"/{msg.stream_id}")]:
            del self.eos_sent[key]
        rate = self.cfg.audio.sample_rate_hz
        self._publish(
            f"stream.{msg.stream_id}.ended", m.StreamEnded(msg.stream_id, msg.end_frame / rate)
        )
        if msg.stream_id in self.dynamic.streams:
            self._forget(msg.stream_id)
            return state
        self._ended.add(msg.stream_id)
        if self.exit_on_eos and self._ended >= set(self._plan.chains):
            return self._apply(state, rt.StopRequested("source ended"))
        return state

    def _send_eos(self, actor_id: str, msg: m.EndOfStream) -> None:
        """Pass a stream's end to the next actor of its chain. The assistant hears the
        transcripts on the event socket, not from its control socket: for it, the end is
        published there first (``stream.<id>.finals_done``), after the stream's last final,
        so it knows it has every final before it answers the end."""
        if actor_id == "assistant":
            end_s = msg.end_frame / self.cfg.audio.sample_rate_hz
            self._publish(
                f"stream.{msg.stream_id}.finals_done", m.StreamEnded(msg.stream_id, end_s)
            )
        self._send(actor_id, msg)

    def _forget(self, stream_id: str) -> None:
        """A run-time stream has ended everywhere: close it and drop what the supervisor
        kept of it (its counters go to the book's totals), so the status map does not grow
        with the streams served."""
        assert self.dynamic is not None
        self.dynamic.close(stream_id)
        self.wakes.forget(stream_id)
        self.book.forget(stream_id, gaps=len(self.gaps.pop(stream_id, ())))

    def _end_owned_streams(self, state: rt.SupervisorState, owner: str) -> rt.SupervisorState:
        """A front door died: end its streams at what their rings hold."""
        if self.dynamic is None:
            return state
        for sid, end in self.dynamic.owned_by(owner):
            log.warning("stream %s: %s exited; ending the stream at frame %d", sid, owner, end)
            state = self._on_eos(state, owner, m.EndOfStream(owner, sid, end))
        return state
