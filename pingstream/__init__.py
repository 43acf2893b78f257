"""pingstream's command line: the composition root that knows every layer (see cli.py)."""
