import sys

from pcseg.cli import main

sys.exit(main())
