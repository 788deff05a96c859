"""streamasr supervisor: config, plan, restart policy, process management, status and the CLI.

The top layer: may import ``actors`` and ``ringbuf``; nothing imports it.
"""
