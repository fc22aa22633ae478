"""Swanwatch's bundled files, installed as ``swanwatch.bundled``: the demo config, the default
rule pack, the example config and the sample data the demo reads.

Read them with ``swanwatch.config.bundled("demo.yaml")``; this folder is their only copy.
"""
