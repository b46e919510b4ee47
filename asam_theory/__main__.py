import sys

from asam_theory.cli import main

sys.exit(main())
