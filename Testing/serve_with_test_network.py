"""``fusevis serve`` with the viewer tests' small network registered (run as a script by the tests)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import viewer_network  # noqa: E402

from FuseVisLib.cli import main  # noqa: E402

if __name__ == "__main__":
    viewer_network.register()
    sys.exit(main(["serve", *sys.argv[1:]]))
