"""Atrium's public contracts: events, topics, roles and permissions, problem types.

This is the one package that services outside Atrium install to speak with it.
"""
