"""streamasr actors: capture, feature, inference, refine and their pure cores."""
