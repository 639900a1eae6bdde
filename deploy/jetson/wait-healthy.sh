#!/bin/sh
# wait-healthy.sh URL SECONDS [--restart UNIT]
# Waits until URL answers 200 (at most SECONDS). With --restart, a URL that does not
# answer in time gets UNIT restarted (the health watchdog) instead of an error.
url=$1; secs=$2; unit=
[ "${3:-}" = --restart ] && unit=$4
end=$(( $(date +%s) + secs ))
while [ "$(date +%s)" -lt "$end" ]; do
  if curl -fsS --max-time 5 "$url" >/dev/null 2>&1; then exit 0; fi
  sleep 2
done
if [ -n "$unit" ]; then
  echo "no answer from $url for $secs s: restarting $unit"
  exec systemctl restart "$unit"
fi
echo "no answer from $url after $secs s" >&2
exit 1
