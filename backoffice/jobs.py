"""Background work on Celery. With CELERY_BROKER_URL unset, tasks run in-process (eager), so the
first run needs no broker; with a broker (e.g. redis://127.0.0.1:6379/0) they run on workers.
Long work started by a page or an API call goes through `in_background`: never in the request's
thread (without a broker, on a small thread pool of the web process)."""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from celery import Celery, Task
from flask import Flask, current_app, has_app_context


class FlaskTask(Task):
    """Runs every task inside the Flask app's context (the latest app that called init_app).
    On a worker each task has a context of its own, so its database session ends with it: the
    worker's processes inherit the `backoffice worker` command's context, and a session kept
    across tasks held its transaction open (on SQLite the write lock, until the process's next
    task). Run eagerly, a task shares its caller's context and unit of work."""

    def __call__(self, *args, **kwargs):
        if (self.request.is_eager and has_app_context()
                and current_app._get_current_object() is celery_app.flask_app):
            return self.run(*args, **kwargs)
        with celery_app.flask_app.app_context():
            return self.run(*args, **kwargs)


celery_app = Celery("backoffice", task_cls=FlaskTask)
celery_app.flask_app = None


def init_app(app: Flask) -> Celery:
    broker = app.config.get("CELERY_BROKER_URL") or ""
    celery_app.conf.update(
        broker_url=broker or "memory://",
        result_backend=app.config.get("CELERY_RESULT_BACKEND") or (broker or None),
        task_always_eager=not broker,
        task_eager_propagates=True,
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        enable_utc=True,
        worker_hijack_root_logger=False,
    )
    celery_app.flask_app = app
    app.extensions["celery"] = celery_app
    return celery_app


# -- off the request ----------------------------------------------------------------------------------
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
BACKGROUND_THREADS = 2  # jobs at once per web process without a broker; more wait their turn


def _background_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=BACKGROUND_THREADS, thread_name_prefix="backoffice-job")
        return _pool


def _run_logged(task: Task, args: tuple) -> None:
    """The task in its own app context (FlaskTask pushes one: the pool's thread has none); a task
    records its own failure on its job row, so what reaches here is only logged."""
    try:
        task.apply(args=args)
    except Exception:  # a pool thread has no caller to raise to
        logging.getLogger(__name__).exception("background job %s%r failed", task.name, args)


def in_background(task: Task, *args) -> None:
    """Starts a long job without holding the request's thread: on a Celery worker with a broker;
    without one on this process's pool of BACKGROUND_THREADS threads (concurrent.futures). The
    caller's page or API answer polls the job's row. Tests (`JOBS_IN_REQUEST`, on under TESTING)
    run it in the request, so its result is there when the answer comes back."""
    if not celery_app.conf.task_always_eager:
        task.delay(*args)
    elif current_app.config.get("JOBS_IN_REQUEST", current_app.testing):
        task.apply(args=args)
    else:
        _background_pool().submit(_run_logged, task, args)
