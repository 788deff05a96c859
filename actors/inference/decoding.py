"""The inference loop: every stream an inference process decodes, read from its PCM ring,
decoded by one recogniser, committed at idle points, and turned into transcript events.

The process around it (recogniser options, hot standby, the spec's rings) is
:mod:`streamasr.actors.inference.actor`.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

import numpy as np

from streamasr.actors import messages as m
from streamasr.actors.asr.base import Recognizer, RecognizerStream, close_decoder
from streamasr.actors.asr.endpointer import Endpointer
from streamasr.actors.asr.log_mel import LogMelOptions, StreamingLogMel
from streamasr.actors.asr.types import Result
from streamasr.actors.conditioning import to_int16
from streamasr.actors.delay import DelayOverride
from streamasr.actors.doorbell import Listener
from streamasr.actors.errors import ConfigError, RingError
from streamasr.actors.inference import endpoints
from streamasr.actors.inference.stream import (
    InferenceStream,
    engine_wait_s,
    seek_cursor,
    stage_split,
)
from streamasr.actors.inference.wake_gate import WakeGate
from streamasr.actors.inference.wake_setup import WakeSetup
from streamasr.actors.runtime import ActorRuntime
from streamasr.actors.settings import AudioConfig, InferenceConfig, RefineConfig
from streamasr.actors.wake.verified import VerifiedDetector
from streamasr.ringbuf import Ring

log = logging.getLogger(__name__)

#: Seconds the commit point stays behind an idle decoder: an utterance's start is dated
#: back from the speech onset (onset window + pre-roll, ~0.5 s for PocketSphinx).
COMMIT_LAG_S = 1.0

#: Segmentation only: an utterance's span is sent again once it grew by this many seconds.
SPAN_STEP_S = 0.2

#: Most audio decoded per stream per loop iteration, in seconds (keeps control responsive).
MAX_STEP_S = 0.5


class InferenceLoop:
    """The inference loop's state: the engine and every stream it decodes."""

    def __init__(
        self,
        rt: ActorRuntime,
        recognizer: Recognizer,
        wake: WakeSetup,
        endpointer: Endpointer | None = None,
    ) -> None:
        self.rt = rt
        self.recognizer = recognizer
        self.endpointer = endpointer
        self.pause_ms = endpoints.pause_ms(endpointer)
        inference = rt.spec.section("inference", InferenceConfig)
        refine = rt.spec.section("refine", RefineConfig)
        self.accurate = refine.finals == "accurate"
        #: The language spoken, on every transcript (see ``RefineConfig.language``).
        self.language = "" if refine.language == "auto" else refine.language
        self.streams: dict[str, InferenceStream] = {}
        self.delay = DelayOverride(rt, "inference", inference.delay_ms)
        self.features = recognizer.input_kind == "features"
        self.mel_options = LogMelOptions(
            sample_rate_hz=rt.spec.section("audio", AudioConfig).sample_rate_hz,
            n_mels=int(inference.torch.get("n_mels", 80)),
        )
        self.hop = self.mel_options.hop_length
        #: engine frames (PCM samples or feature frames) per second
        self.frame_rate = recognizer.sample_rate_hz
        self.compute_ms: deque[float] = deque(maxlen=20)
        self._finish_cpu_s = 0.0
        self._busy_until_ns = 0  # wall clock at which the engine's last call returned
        self.wake = wake
        #: The first pass only segments (no words; Whisper writes every text, see
        #: ``PocketsphinxOptions.words``): its partials and finals are spans for the second pass.
        self.words = bool(getattr(recognizer, "words", True))

    def attach(
        self, stream_id: str, ring_name: str, reader: int, bell: str, gate: str = ""
    ) -> None:
        """Start decoding ``stream_id`` from its ring's shared cursor.

        ``gate``: ``""`` (decode everything), ``assistant`` (wake-gated commands) or
        ``detect`` (wake detection only); streams listed in ``[wake]`` are gated anyway.
        """
        ring = Ring.attach(ring_name, reader=reader)
        listener = Listener(self.rt.ctx, bell)
        self.rt.poller.register(listener.socket)
        start = ring.read_counter
        if self.features:
            start -= start % self.hop
        mode = self.wake.mode(stream_id, gate)
        self.streams[stream_id] = st = InferenceStream(
            stream_id=stream_id,
            ring=ring,
            listener=listener,
            decoder=self._new_decoder(start),
            pos=start,
            buf=np.empty((int(MAX_STEP_S * ring.sample_rate_hz), 1), dtype=np.float32),
            mel=StreamingLogMel(self.mel_options) if self.features else None,
        )
        if mode:
            st.gate = self.wake.gate(mode, start, ring.sample_rate_hz)

    def _new_decoder(self, ring_pos: int) -> RecognizerStream:
        """A decoder whose first frame is ring position ``ring_pos`` (in engine frames),
        ending its utterances by the endpoint policy where it takes one."""
        decoder = self.recognizer.create_stream(start_frame=self._to_engine(ring_pos))
        use = getattr(decoder, "use_endpointer", None)
        if use is not None and self.endpointer is not None:
            use(self.endpointer)
        return decoder

    def _to_engine(self, ring_pos: int) -> int:
        return ring_pos // self.hop if self.features else ring_pos

    def _to_ring(self, engine_frame: int) -> int:
        return engine_frame * self.hop if self.features else engine_frame

    def detach(self, stream_id: str) -> None:
        """Stop serving ``stream_id`` and release its ring and doorbell."""
        st = self.streams.pop(stream_id, None)
        if st is None:
            return
        close_decoder(st.decoder)
        if st.gate is not None:
            st.gate.detector.close()
        self.rt.poller.unregister(st.listener.socket)
        st.listener.close()
        st.ring.close()
        for key in (f"backlog_s.{stream_id}", f"position_s.{stream_id}"):
            self.rt.gauges.pop(key, None)

    def close(self) -> None:
        """Detach every stream."""
        for sid in list(self.streams):
            self.detach(sid)

    def handle(self, msgs: list[Any], ready: set[Any]) -> None:
        """Take control messages (end of stream, streams opened or closed at run time)
        and doorbells.

        Attaching a stream may load a decoder (PocketSphinx: about 0.9 s) and detaching one
        may free it (about 0.1 s), so a burst of them can outlast the heartbeat timeout: the
        loop heartbeats after each (it is making progress, not hung).
        """
        for msg in msgs:
            if isinstance(msg, m.EndOfStream) and msg.stream_id in self.streams:
                self.streams[msg.stream_id].eos_at = msg.end_frame
            elif isinstance(msg, m.StreamAttach) and msg.stream_id not in self.streams:
                try:
                    with self.rt.cpu.charge("attach"):  # a decoder per stream (~0.9 s)
                        self.attach(msg.stream_id, msg.ring, msg.reader, msg.bell, msg.gate)
                except (RingError, ConfigError) as exc:  # closed again before we got here
                    log.warning("cannot attach stream %s: %s", msg.stream_id, exc)
                self.rt.heartbeat()
            elif isinstance(msg, m.StreamDetach):
                self.detach(msg.stream_id)
                self.rt.heartbeat()
            elif isinstance(msg, m.WakeMute) and msg.stream_id in self.streams:
                gate = self.streams[msg.stream_id].gate
                if gate is not None:
                    gate.mute(msg.until_ns)
        for st in self.streams.values():
            if st.listener.socket in ready:
                st.stamps.extend(st.listener.drain())

    def work(self) -> None:
        """Decode what every stream has until all are drained; streams whose audio is
        ready together go through the engine as one batch where it supports batching."""
        busy = True
        while busy and not self.rt.stopping:
            for st in self.streams.values():  # fresh capture clocks while catching up
                st.stamps.extend(st.listener.drain())
            batch = [
                (st, pcm) for st in self.streams.values() if (pcm := self._read(st)) is not None
            ]
            busy = any(pcm.shape[0] == st.buf.shape[0] for st, pcm in batch)
            listening = [(st, pcm) for st, pcm in batch if st.gate and st.gate.listening]
            decoding = [(st, pcm) for st, pcm in batch if not (st.gate and st.gate.listening)]
            for st, pcm in listening:  # a detection rewinds: that stream reads again next time
                with self.rt.cpu.charge("wake"):
                    self._listen(st, pcm)
            if decoding:
                with self.rt.cpu.charge("first_pass"):
                    self._decode(decoding)
            for st in self.streams.values():
                self._maybe_end(st)
            self.rt.heartbeat()
        self.rt.gauges["streams"] = len(self.streams)
        if self.compute_ms:
            self.rt.gauges["proc_ms_p95"] = float(np.percentile(self.compute_ms, 95))
        backlog = max(
            ((s.ring.write_counter - s.pos) / s.ring.capacity for s in self.streams.values()),
            default=0.0,
        )
        self.rt.gauges["backlog_ratio"] = backlog
        if self.endpointer is not None:
            endpoints.publish(self.rt, self.endpointer, backlog)
        if self.delay.check(time.monotonic()):
            self.compute_ms.clear()  # measurements at the old load no longer apply
        self.rt.counters["frames_lost"] = sum(s.frames_lost for s in self.streams.values())

    def _maybe_end(self, st: InferenceStream) -> None:
        if st.eos_at is not None and st.pos >= st.eos_at:
            self._finish(st)
            if st.gate is not None and not st.gate.listening:
                self._end_command(st, "end_of_stream", st.pos)
            log.info("stream %s ended at frame %d", st.stream_id, st.pos)
            self.rt.send(m.EndOfStream(self.rt.spec.actor_id, st.stream_id, st.pos))
            st.eos_at = None

    def _read(self, st: InferenceStream) -> np.ndarray[Any, Any] | None:
        """Up to MAX_STEP_S of new audio of ``st`` (a view of its buffer), or None."""
        avail = st.ring.write_counter - st.pos
        if avail <= 0:
            return None
        n = min(avail, st.buf.shape[0])
        try:
            got = st.ring.read_at(st.pos, st.buf[:n])
        except RingError:  # audio we had not decoded yet was overwritten: skip ahead
            self._resync(st)
            return None
        return st.buf[:got, 0] if got else None

    def _decode(self, batch: list[tuple[InferenceStream, np.ndarray[Any, Any]]]) -> None:
        """Feed each stream its new audio, then emit its partial (and finals).

        A feature-input engine takes every stream's frames as one batch. A PCM engine
        (one decoder per stream) decodes the streams one by one, oldest audio first, and
        sends each stream's partial as soon as that stream is decoded; an utterance that
        reached its endpoint is finalised after every other stream's chunk of this round
        (finalising is the costly step; the other streams' partials do not wait for it).
        """
        if self.features:
            t0, c0, start_ns = time.perf_counter(), time.process_time(), time.time_ns()
            chunks = [st.mel.accept(pcm) for st, pcm in batch]  # type: ignore[union-attr]
            decode_batch = getattr(self.recognizer, "decode_batch", None)
            if decode_batch is not None and len(batch) > 1:
                decode_batch([st.decoder for st, _ in batch], chunks)
            else:
                for (st, _), feats in zip(batch, chunks, strict=True):
                    st.decoder.accept(feats)
            self.rt.gauges["batch"] = len(batch)
            self.delay.burn()  # fault injection: a model that needs more CPU than allowed
            for st, pcm in batch:
                self._consume(st, pcm, finalize=True)
                st.waited_s = engine_wait_s(st.stamp, start_ns, self._busy_until_ns)
            compute_s = time.perf_counter() - t0
            self._busy_until_ns = time.time_ns()
            self._account_cpu(time.process_time() - c0)
            for st, _ in batch:
                self._emit(st, compute_s)
            return
        ended: list[InferenceStream] = []
        cpu_s = 0.0
        for st, pcm in sorted(batch, key=lambda b: b[0].oldest_capture_ns):
            t0, c0, start_ns = time.perf_counter(), time.process_time(), time.time_ns()
            st.decoder.accept(to_int16(pcm))
            self.delay.burn()
            self._consume(st, pcm, finalize=False)
            st.waited_s = engine_wait_s(st.stamp, start_ns, self._busy_until_ns)
            self._busy_until_ns = time.time_ns()
            cpu_s += time.process_time() - c0
            self._emit(st, time.perf_counter() - t0)
            if st.decoder.is_endpoint():
                ended.append(st)
        for st in ended:
            t0, c0, start_ns = time.perf_counter(), time.process_time(), time.time_ns()
            self._run_decoder(st, finalize=True)
            st.waited_s = engine_wait_s(st.stamp, start_ns, self._busy_until_ns)
            self._busy_until_ns = time.time_ns()
            cpu_s += time.process_time() - c0
            self._emit(st, time.perf_counter() - t0)
        self._account_cpu(cpu_s)

    def _consume(self, st: InferenceStream, pcm: np.ndarray[Any, Any], *, finalize: bool) -> None:
        """Account for ``pcm`` as decoded input of ``st`` and run its decoder."""
        st.pos += pcm.shape[0]
        self._advance_stamps(st)
        self._run_decoder(st, finalize=finalize)

    def _run_decoder(self, st: InferenceStream, *, finalize: bool) -> None:
        """Step ``st``'s decoder over its pending input; at an endpoint, finalise the
        utterance and go on (or, with ``finalize=False``, stop there)."""
        while True:
            if st.gate is not None and st.gate.listening:
                break  # a command ended: the rest of this audio goes to the detector
            if st.decoder.is_endpoint():
                if not finalize:
                    break
                self._finish(st)
            elif st.decoder.is_ready():
                st.decoder.step()
            else:
                break

    def _account_cpu(self, cpu_s: float) -> None:
        """Record one round's CPU time per chunk, in ms (for the chunk-size policy).

        CPU time, not wall time: the load this process puts on a core, whatever else runs;
        finalising an utterance is a per-utterance cost, not a per-chunk one: left out.
        """
        chunk_cpu_s = cpu_s - self._finish_cpu_s
        self._finish_cpu_s = 0.0
        self.compute_ms.append(max(0.0, chunk_cpu_s) * 1000.0)

    def _emit(self, st: InferenceStream, compute_s: float) -> None:
        """After decoding ``st``: command limits, its partial, gauges, the commit point."""
        self._check_command(st)
        self._send_partial(st, compute_s)
        # audio waiting in the ring: at most the ring (what the writer ran past is lost,
        # counted in frames_lost when the reader gets there)
        waiting = min(st.ring.write_counter - st.pos, st.ring.capacity)
        self.rt.gauges[f"backlog_s.{st.stream_id}"] = waiting / st.rate
        self.rt.gauges[f"position_s.{st.stream_id}"] = st.pos / st.rate
        self._commit(st)

    def _commit(self, st: InferenceStream) -> None:
        """Move the shared cursor to where a replacement can resume.

        That is the decoder's position when it is idle between utterances; inside an
        utterance the cursor stays at the last idle point, but never more than half the ring
        behind (a writer paced by backpressure must always have room; an utterance longer
        than that is re-decoded from its middle after a crash).
        """
        if st.gate is not None and st.gate.listening:
            target = max(st.ring.read_counter, st.gate.commit_target(st.pos))
            self._seek(st, target - (target % self.hop if self.features else 0))
            return
        idle = st.decoder.utterance_start_frame is None and st.decoder.result() is None
        if idle and not self.features and st.gate is None:
            # the next utterance's start is dated back (speech-onset window + pre-roll), but
            # a replacement must never re-decode the end of an utterance already finalised:
            # it would merge it into the next one, which the supervisor then drops as a repeat
            lagged = st.decoder.position_frame - int(COMMIT_LAG_S * st.rate)
            target = max(st.ring.read_counter, lagged, min(st.last_final_end, st.pos))
        else:
            target = max(st.ring.read_counter, st.pos - st.ring.capacity // 2)
            if self.features:
                target -= target % self.hop  # resume on a feature-frame boundary
        self._seek(st, target)

    def _seek(self, st: InferenceStream, target: int) -> None:
        """Move the shared cursor to ``target``, or to the oldest frame still in the ring."""
        seek_cursor(st.ring, target, self.hop if self.features else 1)

    def _resync(self, st: InferenceStream) -> None:
        """Jump to audio still in the ring after falling more than its capacity behind."""
        target = st.ring.write_counter - st.ring.capacity + st.ring.capacity // 8
        lost = target - st.pos
        st.frames_lost += lost
        self.rt.counters["resyncs"] = self.rt.counters.get("resyncs", 0) + 1
        log.warning(
            "stream %s: inference fell %d frames behind; resuming there", st.stream_id, lost
        )
        self._finish(st)
        if self.features:
            target -= target % self.hop
            st.mel = StreamingLogMel(self.mel_options)
        close_decoder(st.decoder)  # give its model state back before taking a new one
        st.decoder = self._new_decoder(target)
        st.pos = target
        if st.gate is not None:
            if not st.gate.listening:
                self._end_command(st, "overrun", target)
            st.gate.close(target)
        self._seek(st, target)

    def _stages(self, st: InferenceStream, compute_s: float) -> tuple[float, dict[str, float]]:
        return stage_split(st.stamp, compute_s, st.waited_s, time.time_ns())

    def _transcript(
        self,
        st: InferenceStream,
        res: Result,
        compute_s: float,
        *,
        is_final: bool,
        provisional: bool = False,
    ) -> m.Transcript:
        latency, stages = self._stages(st, compute_s)
        return m.Transcript(
            stream_id=st.stream_id,
            utterance_id=f"{st.stream_id}:{self._to_ring(res.start_frame)}",
            seq=0,
            is_final=is_final,
            passno=1,
            text=res.text,
            start_s=res.start_frame / self.frame_rate,
            end_s=res.end_frame / self.frame_rate,
            words=[[w.word, w.start_s, w.end_s, w.conf] for w in res.words],
            latency_s=latency,
            stages_s=stages,
            provisional=provisional,
            wake_id=st.gate.wake_id if st.gate is not None else "",
            language=self.language,
        )

    def _send_pause(self, st: InferenceStream) -> None:
        """Accurate finals: tell the second pass when an utterance's speech has paused."""
        paused_span = getattr(st.decoder, "paused_span", None)
        if not self.accurate or paused_span is None or (st.gate and self.wake.grammar):
            return
        span = paused_span(self.pause_ms)
        if span is None or span == st.paused:
            return
        st.paused = span
        start, end = self._to_ring(span[0]), self._to_ring(span[1])
        uid = f"{st.stream_id}:{start}"
        self.rt.send(m.SpeechPaused(st.stream_id, uid, start, end, st.rate))

    def _send_partial(self, st: InferenceStream, compute_s: float) -> None:
        self._send_pause(st)
        res = st.decoder.result()
        if res is None:
            return
        if not self.words:  # a span without text: sent as it grows, for Whisper's partials
            if res.end_frame - st.last_partial_end < SPAN_STEP_S * self.frame_rate:
                return
            st.last_partial_end = res.end_frame
        elif res.text == st.last_partial:
            return
        st.last_partial = res.text
        self.rt.send(self._transcript(st, res, compute_s, is_final=False))

    def _finish(self, st: InferenceStream) -> None:
        """Finalize the utterance in progress; send its final (and its refine job)."""
        t0, c0 = time.perf_counter(), time.process_time()
        res = st.decoder.finalize()
        finalize_s = time.perf_counter() - t0
        self._finish_cpu_s += time.process_time() - c0
        st.last_partial = ""
        st.last_partial_end = -1
        if res is None or (self.words and not res.text):
            return
        st.last_final_end = max(st.last_final_end, self._to_ring(res.end_frame))
        accurate = self.accurate and not (st.gate is not None and self.wake.grammar)
        final = self._transcript(st, res, finalize_s, is_final=True, provisional=accurate)
        self.rt.send(final)
        self.rt.counters["finals"] = self.rt.counters.get("finals", 0) + 1
        if st.gate is not None and not st.gate.listening:
            self._end_command(st, "final", self._to_ring(res.end_frame))
        if accurate:
            self.rt.send(
                m.RefineJob(
                    stream_id=st.stream_id,
                    utterance_id=final.utterance_id,
                    start_frame=self._to_ring(res.start_frame),
                    end_frame=self._to_ring(res.end_frame),
                    sample_rate_hz=st.rate,
                    t_endpoint_ns=time.time_ns(),
                    first_pass=final,
                    continued=res.continued,
                )
            )

    def _advance_stamps(self, st: InferenceStream) -> None:
        """Take the capture clock of the newest chunk the read position has passed."""
        while st.stamps and st.stamps[0].end_frame <= st.pos:
            st.stamp = st.stamps.popleft()

    def _listen(self, st: InferenceStream, pcm: np.ndarray[Any, Any]) -> None:
        """A listening stream: feed the detector; on a detection open the command window."""
        gate = st.gate
        assert gate is not None
        muted = gate.muted
        st.pos += pcm.shape[0]
        self._advance_stamps(st)  # the capture clock of this audio, for the mute
        det = gate.listen(to_int16(pcm), st.stamp.t_capture_ns)
        if gate.muted > muted:
            self.rt.counters["wakes_muted"] = self.rt.counters.get("wakes_muted", 0) + 1
        if isinstance(gate.detector, VerifiedDetector):  # [wake] verify's refusals
            self._count_unconfirmed(gate, gate.detector.rejected)

        if det is not None:
            wake = self.wake.detected(st.stream_id, det, st.pos, st.rate)
            self.rt.send(wake)
            self.rt.counters["wakes"] = self.rt.counters.get("wakes", 0) + 1
            if gate.options.mode == "assistant":
                oldest = max(0, st.ring.write_counter - st.ring.capacity)
                start = gate.open(det, wake.wake_id, st.pos, oldest)
                if self.features:
                    start -= start % self.hop
                    st.mel = StreamingLogMel(self.mel_options)
                close_decoder(st.decoder)
                st.decoder = self.wake.command_stream(self._to_engine(start))
                st.pos = start
                st.last_partial = ""
                return
        self._commit(st)

    def _count_unconfirmed(self, gate: WakeGate, unconfirmed: int) -> None:
        """Add ``gate``'s detections refused since the last count to ``wakes_unconfirmed``."""
        if unconfirmed > gate.unconfirmed_seen:
            n = unconfirmed - gate.unconfirmed_seen
            self.rt.counters["wakes_unconfirmed"] = self.rt.counters.get("wakes_unconfirmed", 0) + n
            gate.unconfirmed_seen = unconfirmed

    def _check_command(self, st: InferenceStream) -> None:
        """Close a command window that timed out or ran too long."""
        if st.gate is None:
            return
        reason = st.gate.over(st.pos, st.decoder.utterance_start_frame is not None)
        if reason == "limit":
            self._finish(st)  # the command so far becomes its final
        if reason is not None and not st.gate.listening:
            self._end_command(st, reason, st.pos)

    def _end_command(self, st: InferenceStream, reason: str, resume: int) -> None:
        """Tell subscribers the command window closed; listen again from ``resume``."""
        assert st.gate is not None
        resume = min(max(resume, st.gate.command_start), st.pos)
        if self.features:
            resume -= resume % self.hop
            st.mel = StreamingLogMel(self.mel_options)
        self.rt.send(m.WakeEnded(st.stream_id, st.gate.wake_id, reason, resume / st.rate))
        self.rt.counters[f"commands_{reason}"] = self.rt.counters.get(f"commands_{reason}", 0) + 1
        st.gate.close(resume)
        close_decoder(st.decoder)
        st.decoder = self._new_decoder(resume)
        st.pos = resume
        st.last_partial = ""
