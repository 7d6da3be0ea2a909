import sys

from mingyan.cli import main

sys.exit(main())
