"""Container endpoints: create, list, inspect, lifecycle, wait, logs, attach, resize, commit."""
