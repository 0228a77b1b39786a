import sys

from distillery_client.cli import main

sys.exit(main())
