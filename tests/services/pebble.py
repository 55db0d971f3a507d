"""certbot_dane_tlsa.lab.pebble under its test-suite name."""

import sys

from certbot_dane_tlsa.lab import pebble as _module

sys.modules[__name__] = _module
