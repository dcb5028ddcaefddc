"""``python -m localex --host 127.0.0.1 --port N [--seed S] [--speed X] [--data-dir D]``."""

from localex.server.runner import main

raise SystemExit(main())
