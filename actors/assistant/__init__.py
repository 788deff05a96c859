"""The voice assistant after the transcript: intents, actions and a spoken reply.

May import the shared runtime (``messages``, ``errors``, ``typed``, ``runtime``); no stage.
"""
