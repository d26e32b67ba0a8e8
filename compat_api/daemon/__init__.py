"""The ``pydockerd`` command: flags, daemon.json, listeners, lifecycle."""
