"""Configuration for Tortoise's own CLI (`python -m tortoise -c market.tortoise_cli.TORTOISE_ORM`).

Only for developers writing migrations (`makemigrations`); the service applies them with
`eldercare migrate`.
"""

from market.db import tortoise_config
from market.settings import load_settings

TORTOISE_ORM = tortoise_config(load_settings().database_url)
