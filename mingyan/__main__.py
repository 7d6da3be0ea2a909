import sys

from mingyan.cli.main import main

sys.exit(main())
