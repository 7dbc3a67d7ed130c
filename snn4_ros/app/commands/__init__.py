"""The ``snn4`` commands, one module per command group. Each module has ``add_parsers(sub)``
(its subcommands, each with ``fn`` set to the function that runs it); ``app/cli.py``
composes them. Heavy imports stay inside the functions: ``snn4 --help`` stays fast."""
