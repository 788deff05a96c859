"""Wake-word engines (``registry.create_wake_engine``): microWakeWord, openWakeWord, PocketSphinx.

May import the shared ``errors`` and ``typed`` modules and the ``asr`` library; no stage.
"""
