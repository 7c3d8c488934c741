"""Retention: what expires and when (the purge), legal holds, and whether the promises hold.

The windows themselves come from the jurisdiction (privplate.jurisdiction); how rows and bytes
leave each database is the store's (privplate.store.purging).
"""
