"""Reads for reports (HackSoft's selectors): functions that query and return plain data, never write."""
