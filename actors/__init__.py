"""The actors' public entry: connecting to Ray and resolving actors by name.

The api and the workers import only this module of ``actors``.
"""

from actors.cluster import connect_ray, disconnect_ray, ray_health

__all__ = ["connect_ray", "disconnect_ray", "ray_health"]
