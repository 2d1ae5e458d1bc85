"""Inbound email: parsing a raw message, telling people from machines, and routing it."""
