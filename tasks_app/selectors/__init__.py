"""Reads that more than one interface shares (HackSoft's selectors): commands and admin pages call these."""
