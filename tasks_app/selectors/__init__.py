"""Reads (HackSoft's selectors): functions that query and return plain data, never write; commands,
admin pages and reports share them."""
