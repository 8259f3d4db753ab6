"""Teleradiology: orders from the hospital information system, worklists, rota and routing,
reports and results."""
