"""Recogniser backends behind one small interface (sherpa-onnx online_recognizer shape)."""
