"""The edge: sources, tracking, tokens, sealed evidence, alerts, spool and uplink.

Plate text exists here only in memory, between the OCR and the token computation.
"""
