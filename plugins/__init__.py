"""Plugins shipped with netns-shell (installed as `netns_shell.builtin_plugins`).

Each module here is loaded like any other plugin: it defines
`register(registry)` and adds commands through the same registry as the
built-in commands.  See docs/plugins.md for how to write one.
"""
