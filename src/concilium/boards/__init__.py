"""Multidisciplinary meetings (RCP, tumour boards): cases, agenda, quorum, decisions, minutes."""
