"""Keep DANE TLSA records in BIND zones true to certbot certificates.

This package must stay cheap to import: certbot imports every installed plugin on every run,
and the deploy hook runs on every renewal. Nothing here imports certbot or does I/O.
"""

__version__ = "0.1.0"
