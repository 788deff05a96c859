"""Whisper second pass: offline model store, short-window refiner, VAD gate, output filters."""
