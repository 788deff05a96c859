"""Inference stage: PCM rings -> a streaming recogniser (and wake-word gates) -> transcript events.

May import the shared actor modules, the ``asr`` and ``wake`` engine libraries and ringbuf.
"""
