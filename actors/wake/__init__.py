"""Wake-word engine library: a keyphrase spotter (``registry.create_wake_engine``) gating streams.

May import the shared ``errors`` and ``typed`` modules and the ``asr`` library; no stage.
"""
