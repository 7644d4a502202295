"""Rendering: engine results become a rich table, JSON, CSV, Markdown or a CI
system's format. One module per area (report, explain, verify, search, check,
latency) on what they share (base). Nothing here computes a figure: every
number shown comes from the engine's records, unrounded in the machine
formats."""
