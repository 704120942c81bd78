"""The command line: the parser and ``main`` (``python -m harness``, the ``harness`` script) and one function per command."""
