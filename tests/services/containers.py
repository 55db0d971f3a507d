"""certbot_dane_tlsa.lab.containers under its test-suite name."""

import sys

from certbot_dane_tlsa.lab import containers as _module

sys.modules[__name__] = _module
