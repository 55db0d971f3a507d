"""Allow ``python -m certbot_dane_tlsa``."""

import sys

from certbot_dane_tlsa.cli import main

sys.exit(main())
