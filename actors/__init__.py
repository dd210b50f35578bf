"""The actors' public entry: connecting to Ray and reaching actors by name.

The api and the workers import only this module of ``actors``.
"""

from actors.cluster import connect_ray, disconnect_ray, ray_health
from actors.gateway import SensorGateway, start_capture, stop_capture

__all__ = [
    "SensorGateway",
    "connect_ray",
    "disconnect_ray",
    "ray_health",
    "start_capture",
    "stop_capture",
]
