"""certbot_dane_tlsa.lab.postfix under its test-suite name."""

import sys

from certbot_dane_tlsa.lab import postfix as _module

sys.modules[__name__] = _module
