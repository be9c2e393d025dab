"""Batches on a Ray cluster (the optional `studio[cluster]` extra).

A room between the command line and the engines: `studio batch FILE --ray ADDRESS` and
`studio grid --ray ADDRESS` hand their jobs to `ray_pool.RayPool` instead of the local
pool of `engines.batch`. Importing this package does not import Ray; only
`studio.cluster.ray_pool` does, and the CLI imports it only when `--ray` is given.
"""
