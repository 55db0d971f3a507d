"""certbot_dane_tlsa.lab.ports under its test-suite name."""

import sys

from certbot_dane_tlsa.lab import ports as _module

sys.modules[__name__] = _module
