"""Runnable benchmarks: each module measures one operation against a same-run baseline.

A benchmark module runs on its own (``python -m benchmarks.pull``) and exposes
``run(...) -> list[dict]``: one dict per figure with the keys ``name``, ``value``,
``baseline``, ``ratio``, ``unit`` and ``target``.
"""
