"""Test-wide setup: the bench fixtures (bench/realprogram.py builds real-slit MOS programs) are
importable by the tests without being part of the package."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
