"""One thin module per command of ``python -m lenasim`` (``lenasim.cli`` parses the
arguments and imports only the command it runs): each validates its inputs, calls the
stages and prints.

The top of the stages: may import any of them; only ``lenasim.cli`` imports it.
Heavy stages are imported inside the handlers, so that a command loads only what it
uses (``run`` imports the model's fit only with ``--refit``).
"""
