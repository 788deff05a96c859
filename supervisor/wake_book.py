"""Wake events published exactly once, even across a restart of the inference actor.

A replacement inference process resumes a listening stream from behind the phrase and detects
it again; its detection can end a few milliseconds away from the first one (it started
reading at another position), so it carries another ``wake_id``. :class:`WakeBook` drops a
detection that overlaps one already published on the same stream and maps its id to the
published one, so the command's transcripts and its ``wake_ended`` event carry the id
subscribers saw.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, deque
from typing import Any

from streamasr.actors import messages as m

__all__ = ["WakeBook"]

#: Detections remembered per stream (and ids remembered overall) for de-duplication.
REMEMBER = 256


class WakeBook:
    """De-duplicates wake events and rewrites repeated ids (see the module docstring)."""

    def __init__(self) -> None:
        """Start with nothing published."""
        self._spans: dict[str, deque[tuple[float, float, str]]] = {}
        self._alias: OrderedDict[str, str] = OrderedDict()
        self._ended: OrderedDict[str, None] = OrderedDict()
        self.repeats = 0

    def detected(self, msg: m.WakeDetected) -> m.WakeDetected | None:
        """``msg`` if it is new; None if it repeats a published detection."""
        spans = self._spans.setdefault(msg.stream_id, deque(maxlen=REMEMBER))
        for start_s, end_s, wake_id in spans:
            if msg.start_s < end_s and msg.end_s > start_s:
                if msg.wake_id != wake_id:
                    self._remember(self._alias, msg.wake_id, wake_id)
                self.repeats += 1
                return None
        spans.append((msg.start_s, msg.end_s, msg.wake_id))
        return msg

    def ended(self, msg: m.WakeEnded) -> m.WakeEnded | None:
        """``msg`` under its published id, or None if that command already ended."""
        wake_id = self._alias.get(msg.wake_id, msg.wake_id)
        if wake_id in self._ended:
            self.repeats += 1
            return None
        self._remember(self._ended, wake_id, None)
        return msg if wake_id == msg.wake_id else dataclasses.replace(msg, wake_id=wake_id)

    def transcript(self, msg: m.Transcript) -> m.Transcript:
        """``msg`` with its ``wake_id`` mapped to the published detection's id."""
        wake_id = self._alias.get(msg.wake_id)
        return msg if wake_id is None else dataclasses.replace(msg, wake_id=wake_id)

    @staticmethod
    def _remember(table: OrderedDict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        while len(table) > REMEMBER:
            table.popitem(last=False)

    def forget(self, stream_id: str) -> None:
        """Drop what is remembered of an ended stream's detections."""
        self._spans.pop(stream_id, None)
