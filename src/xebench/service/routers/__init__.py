"""The service's routes, one router per job; :func:`~xebench.service.app.create_app`
includes them in this order.

Each router takes what it shares with the others as route parameters
(:data:`~xebench.service.state.State`, :data:`~xebench.service.auth.Reader` /
:data:`~xebench.service.auth.Ingester`), so a new one is one file and one
line here.

Example:
    >>> [route.path for route in health.router.routes]
    ['/healthz', '/readyz']
"""

from . import dashboard, drilldown, health, ingest, metrics, monitoring, references, slos, status

__all__ = [
    "ROUTERS",
    "dashboard",
    "drilldown",
    "health",
    "ingest",
    "metrics",
    "monitoring",
    "references",
    "slos",
    "status",
]

#: Every router, in the order the app includes them (and the API docs list them).
ROUTERS = (
    ingest.router,
    monitoring.router,
    drilldown.router,  # GET /v1/cohorts, /v1/reliability, /v1/events
    slos.router,
    references.router,
    status.router,
    metrics.router,  # GET /metrics (Prometheus)
    health.router,
    dashboard.router,  # GET /, /oncall, /debug, /login, /static/... (the web dashboard)
)
