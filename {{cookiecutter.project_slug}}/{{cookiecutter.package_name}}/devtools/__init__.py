"""Tools for developing the bot on your machine; the deployed app never imports them.

`pyproject.toml` leaves this folder out of the installed package, so a
`pip install .` (as in the Dockerfile) has no `flask spectrum playground`.
"""
