"""Feature stage: the audio ring, conditioned (validated, downmixed, resampled) into the PCM ring.

May import the shared actor modules (runtime, messages, doorbell, errors, conditioning) and ringbuf.
"""
