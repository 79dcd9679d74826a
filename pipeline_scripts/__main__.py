import sys

from pipeline_scripts.cli import main

sys.exit(main())
