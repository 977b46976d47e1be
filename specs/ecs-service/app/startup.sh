#!/usr/bin/env bash
# Placeholder for the service's startup script (ENTRYPOINT ["bash", "startup.sh"]).
