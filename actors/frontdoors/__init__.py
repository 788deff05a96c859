"""Front doors: remote streams in (WebSocket gateway, OpenAI-compatible HTTP API on its port,
Wyoming, web page) and their client.

May import the shared actor modules (runtime, messages, errors, conditioning, audio_file) and
engine libs.
"""
