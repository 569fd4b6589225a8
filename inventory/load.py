"""Reading an inventory file of any supported format, checked and enriched from ODS data."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from inventory.csv_source import read_csv
from inventory.duplicates import reject_duplicates
from inventory.ods import OdsFile, apply_ods, read_epraccur
from inventory.problems import Inventory
from inventory.yaml_source import read_yaml

Format = Literal["csv", "yaml"]
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".txt": "csv", ".yaml": "yaml", ".yml": "yaml"}


def guess_format(path: Path) -> Format | None:
    return _SUFFIXES.get(path.suffix.lower())


def load_inventory(
    path: Path, *, fmt: Format, ods: OdsFile | None = None, ods_name: str = "epraccur.csv"
) -> Inventory:
    """Every host of the file, with every problem found; duplicates become problems.

    Raises InventoryFileError only when a file cannot be read at all.
    """
    inventory = read_csv(path) if fmt == "csv" else read_yaml(path)
    reject_duplicates(inventory)
    if ods is not None:
        inventory.problems.extend(ods.problems)
        apply_ods(inventory, ods, source=ods_name)
    return inventory


__all__ = ["Format", "Inventory", "guess_format", "load_inventory", "read_epraccur"]
