"""The Starlette application: routes, and a lifespan that owns the collectors and the hub."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from . import api, metrics, store
from .auth import Auth
from .auth import routes as auth_routes
from .auth import setup as first_run
from .auth.gate import SecurityMiddleware
from .collectors.nodes import NodeCollector, open_nodes
from .collectors.runner import CollectorRunner, describe
from .config import TABLES, Config, from_env
from .hub import Hub
from .supervise import TaskSet
from .ws import websocket_endpoint

log = logging.getLogger("rtm")
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
# Only registrations expire by themselves; the runner drops them at that second.
EXPIRES_FIELD = {"accounts": "expires"}


async def index(request: Request) -> Response:
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def open_collectors(config: Config) -> list[NodeCollector]:
    """The collectors of each table (one per node its URL names); a bad URL fails start-up
    with its setting's name."""
    return [node for table in TABLES for node in open_nodes(table, config)]


def start_collecting(
    config: Config, hub: Hub, collectors: list[NodeCollector], tasks: TaskSet
) -> None:
    """A supervised polling task (and hint task) per collector; a crash shows as stale."""
    for opened in collectors:
        collector, node = opened.collector, opened.node
        if node is not None:
            hub.add_node(collector.table, node)
        runner = CollectorRunner(
            collector,
            hub,
            interval=config.poll[collector.table],
            changes_interval=config.changes_interval,
            reconcile=config.reconcile,
            expires_field=EXPIRES_FIELD.get(collector.table),
            node=node,
            prefix=opened.prefix,
        )

        def crashed(
            exc: BaseException, table: str = collector.table, node: str | None = node
        ) -> None:
            hub.set_source(table, False, f"internal error: {describe(exc)}", node)

        name = collector.table if node is None else f"{collector.table}:{node}"
        tasks.start(f"collect:{name}", runner.run, crashed)
        tasks.start(f"hints:{name}", runner.watch)


def create_app(config: Config | None = None) -> Starlette:
    config = (config or from_env()).validate()
    hub = Hub(
        TABLES,
        ring_size=config.ring_size,
        ring_bytes=config.ring_bytes,
        client_frames=config.client_queue_frames,
        client_bytes=config.client_queue_bytes,
    )
    collectors = open_collectors(config)
    # The one migration of a serving rtm: Auth reads its signing key from the store below.
    store.migrate(config.db)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = TaskSet()
        cluster = app.state.cluster
        if cluster is None:
            start_collecting(config, hub, collectors, tasks)
        else:  # collectors run on the instance holding the cluster's lease (server/cluster/)
            await cluster.join()
            tasks.start("cluster:follow", cluster.follow)
            tasks.start("cluster:lead", cluster.lead)
        if config.demo:
            from .demo.run import run_demo  # the generator is only loaded when asked for

            tasks.start("demo", lambda: run_demo(config.db))
        try:
            yield
        finally:
            await tasks.stop()
            if cluster is not None:
                await cluster.close()
            for opened in collectors:
                await opened.collector.close()

    cluster = None
    if config.redis:
        from .cluster.node import Cluster  # redis-py is only loaded for a cluster

        cluster = Cluster(
            config, hub, lambda into, tasks: start_collecting(config, into, collectors, tasks)
        )

    async def cluster_status(request: Request) -> Response:
        return JSONResponse({"cluster": False} if cluster is None else cluster.status())

    auth = Auth(config)
    setup = first_run.FirstRun(auth)  # `rtm serve` issues its token (first_run.announce)
    routes = [
        *auth_routes.routes(auth, setup.is_open),
        *first_run.routes(auth, setup),
        Route("/", index),
        Route("/healthz", api.healthz),
        Route("/readyz", api.readyz),
        Route("/metrics", api.metrics),
        Route("/api/cluster", cluster_status),
        Route("/api/accounts/{username:path}", api.account),
        Route("/api/queue/{id:path}", api.message),
        *(api.table_route(name) for name in TABLES),
        WebSocketRoute("/ws", websocket_endpoint),
        Mount("/static", StaticFiles(directory=WEB_DIR, check_dir=False), name="static"),
    ]
    # Every request and WebSocket passes the gate first (docs/security.md).
    middleware = [Middleware(SecurityMiddleware, auth=auth, setup_open=setup.is_open)]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=middleware,
        exception_handlers={404: api.not_found_handler},
    )
    app.state.auth = auth
    app.state.first_run = setup
    app.state.config = config
    app.state.hub = hub
    app.state.cluster = cluster
    app.state.metrics = metrics.registry(hub)
    return app
