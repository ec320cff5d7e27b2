"""Adapters that implement the domain's ports over the network."""
