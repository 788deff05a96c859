"""Wake-word engine library: a keyphrase spotter (``registry.create_wake_engine``) gating streams.

May import the shared ``errors`` module and the ``asr`` engine library; no stage, no runtime.
"""
