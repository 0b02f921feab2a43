"""The fault campaign: a seeded workload through the gateway while processes are killed
and started again, then a check that every guarantee held."""
