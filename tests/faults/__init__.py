"""The fault and attack suite: load with canaries and withdrawals, faults, and a checker.

`python -m tests.faults` (or `make faults`) runs the scenarios on the project's local broker
and writes a report (JSON and a Markdown table); `tests/integration/test_faults.py` runs a
smaller version in CI. See docs/reliability.md.
"""
