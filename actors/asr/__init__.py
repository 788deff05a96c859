"""Recogniser engine library behind one small interface (sherpa-onnx online_recognizer shape).

May import the shared ``errors`` and ``typed`` modules only: no stage, runtime, rings or sockets.
"""
