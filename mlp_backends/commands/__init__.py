"""The `mlp-backends` commands, one module each: `add_arguments(parser)` declares a
command's options and `run(args)` carries it out (cli.py builds the parser and runs one)."""
