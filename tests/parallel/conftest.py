"""tests/parallel reuses tests/ad/harness.py (finite differences along random directions, the
dot-product test); put its folder on the import path after this one's."""
import sys
from pathlib import Path

AD_TESTS = str(Path(__file__).resolve().parents[1] / "ad")
if AD_TESTS not in sys.path:
    sys.path.append(AD_TESTS)
