"""The ASGI entry Hypercorn serves: ``hypercorn api.asgi:app``."""

from api.app import create_app
from core.log import configure_logging
from core.settings import load_settings

settings = load_settings()
configure_logging("api", settings.log_level)
app = create_app(settings)
