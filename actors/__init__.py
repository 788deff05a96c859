"""streamasr actors: one package per pipeline stage, engine libraries beside them, and the
shared actor runtime at the top.

Layout (each package's docstring says what it may import):

* shared runtime, imported by every stage: ``runtime`` (sockets, heartbeats, control),
  ``spec`` (what the supervisor tells a process), ``doorbell``, ``messages`` (the one wire
  schema), ``errors`` (the exception hierarchy), ``conditioning`` (PCM conditioning, run by
  the feature stage and the front doors), ``audio_file`` (block reads of an audio file that
  never restart its decoder: the file source and the OpenAI upload), ``delay`` (fault
  injection: slower models);
* stages, each an actor process (``python -m streamasr.actors SPEC.json``): ``capture``,
  ``feature``, ``inference``, ``refine``, ``frontdoors`` (gateway, Wyoming). A stage imports
  the shared runtime and the engine libraries, never another stage;
* engine libraries, free of processes, rings and sockets: ``asr`` (streaming recognisers,
  log-mel features), ``wake`` (wake-word spotting).

Nothing here imports ``streamasr.supervisor``; ``streamasr.ringbuf`` is below everything.
"""
