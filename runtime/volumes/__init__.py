"""Volumes as dockerd keeps them: the ``local`` driver under ``<data-root>/volumes``, the
volume service behind ``/volumes`` (names, labels, references by containers, filters,
prune, events), and what containers need (``-v``/``--mount``/image ``VOLUME`` mounts,
copy-up of image content, mount on start, release on removal)."""
