"""Recogniser engine library behind one small interface (sherpa-onnx online_recognizer shape).

May import the shared ``errors`` module only: no stage, no runtime, no rings, no sockets.
"""
