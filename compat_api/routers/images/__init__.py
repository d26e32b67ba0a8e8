"""The image endpoints (/images/...): import, list, inspect, history, tag, delete,
save, load, prune, search; pull, push and distribution inspect (``distribution.py``)."""
