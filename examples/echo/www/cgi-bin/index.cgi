#!/bin/sh
# Echoes the request back as plain text.
printf 'Content-Type: text/plain\r\n\r\n'
echo "Hello from kiln's echo server!"
echo "method:  $REQUEST_METHOD"
echo "path:    $REQUEST_URI"
echo "client:  $REMOTE_ADDR"
echo "agent:   $HTTP_USER_AGENT"
echo "host:    $(hostname)"
if [ -n "$CONTENT_LENGTH" ] && [ "$CONTENT_LENGTH" -gt 0 ]; then
  echo "body:"
  head -c "$CONTENT_LENGTH"
  echo
fi
