"""certbot_dane_tlsa.lab.unbound under its test-suite name."""

import sys

from certbot_dane_tlsa.lab import unbound as _module

sys.modules[__name__] = _module
