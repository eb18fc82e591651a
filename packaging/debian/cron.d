# /etc/cron.d/checkallsslcerts: the nightly run on hosts without systemd (with systemd, the
# checkallsslcerts.timer unit runs it, and this line does nothing).
SHELL=/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
37 3 * * * root test -x /usr/bin/checkallsslcerts && ! test -d /run/systemd/system && /usr/bin/checkallsslcerts --allow-retry --quiet
