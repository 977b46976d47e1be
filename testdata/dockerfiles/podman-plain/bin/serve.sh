#!/bin/sh
exec /bin/busybox httpd -f -p 8080 -h /srv/www
