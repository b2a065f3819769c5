"""``python -m mcu``: points at the two real entry points."""
import sys

print("use: python -m mcu.export --help   or   python -m mcu.check --help", file=sys.stderr)
sys.exit(2)
