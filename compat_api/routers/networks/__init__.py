"""The /networks area: list, inspect, create, remove, connect, disconnect, prune."""
