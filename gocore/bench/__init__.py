"""gocore's benchmark suite: workloads B1..B11 on gocore and its peers.

Run it with ``python -m gocore.bench`` (see ``--help``).  Each workload is
implemented once per runtime, in ``w_gocore``, ``w_asyncio`` (also used for
uvloop), ``w_trio``, ``w_gevent`` and ``w_threading``, with the parameters of
``common.PARAMS``; the runner (``__main__``) runs every (runtime, workload)
pair in fresh processes via ``_one`` and prints one comparison table.

Importing this package imports no runtime and no peer.
"""
