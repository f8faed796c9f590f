"""Netlink queries: each module turns one kind of kernel object into records.

Records are plain dicts whose keys and values follow iproute2's `-j` output
for the same object, so they serialise straight to the JSON contract.
"""
