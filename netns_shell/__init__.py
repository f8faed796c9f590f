"""netns-shell: a troubleshooting shell for Linux network namespaces."""

__version__ = "0.1.0"
