from tests.compat_api.routers.container_app import client, wired

__all__ = ["client", "wired"]
