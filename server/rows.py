"""What flows through the pipeline: a row, and a table's state as rows keyed by id.

Below everything else: sources build rows, the diff compares them, the hub and the wire
carry them. It imports nothing of rtm's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# A row is the wire form of one table row: JSON-ready values, always with an "id".
Row = dict[str, Any]
# A table's state: rows keyed by their id.
Rows = Mapping[str, Row]
