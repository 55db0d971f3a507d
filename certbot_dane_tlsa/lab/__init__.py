"""A throwaway lab on loopback: named, unbound, Pebble + certbot, Postfix and podman.

The demo (`certbot-dane-tlsa demo`) and the test suite start the same real services through
these classes, so what the demo shows is what the tests prove. Everything listens on
127.0.0.0/8 in a directory the caller owns and is stopped by PID. Nothing here is imported on
the deploy path or by the certbot plugin.
"""
