"""streamasr supervisor: config, restart policy, process management and the CLI."""
