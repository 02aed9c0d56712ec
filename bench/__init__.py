"""Benchmarks against the anchors (grpcio, grpclib, betterproto2): ``python -m bench``."""
