"""Refine stage: Whisper re-reads each utterance from the PCM ring and makes the accurate finals.

May import the shared actor modules, the ``asr`` engine library (its word type, the Silero VAD
loader) and ringbuf.
"""
