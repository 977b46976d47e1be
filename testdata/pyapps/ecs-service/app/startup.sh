#!/usr/bin/env bash
# ENTRYPOINT ["bash", "startup.sh"]: the service on port 5000, above 1024,
# which appuser may bind.
set -euo pipefail
exec gunicorn --bind 0.0.0.0:5000 --workers 2 --access-logfile - app:app
