"""certbot_dane_tlsa.lab.named under its test-suite name."""

import sys

from certbot_dane_tlsa.lab import named as _module

sys.modules[__name__] = _module
