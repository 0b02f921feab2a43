"""All of identity's SQL, one repository per aggregate. Each takes the unit of work's
session and only flushes; the entry point's unit of work commits.

Lock order, the same on every path: a workspace's row, then its seat pool's row (pools
in id order when there are two), then an invitation's row."""
