"""``python -m localex [--host 127.0.0.1] [--port N] [--data-dir D] [--seed S] [--speed X] ...`` (``--help``)."""

from localex.server.runner import main

raise SystemExit(main())
