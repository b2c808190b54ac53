"""Stacking on several machines (``focusdrop watch --cluster``) with Dask distributed: the service stays the
single owner of the hot folder and its journal and submits one task per stack; each task stacks the whole
bracket on one worker, on the share every machine mounts. ``certs`` makes the studio's TLS certificates,
``task`` is what runs on a worker, ``runner`` is the service's side, ``worker`` is ``focusdrop worker``."""
