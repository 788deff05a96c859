"""Capture stage: a microphone, file or stdin source into the stream's audio ring.

May import the shared actor modules (runtime, messages, doorbell, errors, audio_file), ringbuf;
no stage.
"""
