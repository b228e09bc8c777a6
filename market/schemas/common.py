"""Field types shared by several commands."""

from __future__ import annotations

from typing import Annotated

from market.schemas.parse import Range, Text

Name = Annotated[str, Text(1, 100)]
Phone = Annotated[str, Text(6, 20, r"\+?[0-9][0-9 \-]{4,18}[0-9]")]
Password = Annotated[str, Text(1, 256)]
# The top-level district code names its ledger chain, so it follows the ledger's district ids.
DISTRICT_CODE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}"
DistrictCode = Annotated[str, Text(1, 32, DISTRICT_CODE_PATTERN)]
Latitude = Annotated[float, Range(-90, 90)]
Longitude = Annotated[float, Range(-180, 180)]
BirthYear = Annotated[int, Range(1900, 2100)]
Gender = Annotated[str, Text(1, 8, r"female|male|other")]
ShortText = Annotated[str, Text(1, 200)]
LongText = Annotated[str, Text(1, 2000, multiline=True)]


def normalise_phone(phone: str) -> str:
    """Digits only, keeping a leading +, so '138 0013 8000' and '13800138000' are one account."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return ("+" + digits) if phone.strip().startswith("+") else digits
