"""Front doors: remote streams in (WebSocket gateway, Wyoming, web page) and their client.

May import the shared actor modules (runtime, messages, errors, conditioning) and engine libs.
"""
