"""Horizon's harness logic: plain Python, no Django.

The runner plans a goal into steps and executes them one tick at a time against a
`Store` (agents.store). Everything with side effects sits behind a seam: the model
(agents.model), the tools (agents.tools) and the store itself.
"""
