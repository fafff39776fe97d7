"""Background work on Celery. With CELERY_BROKER_URL unset, tasks run in-process (eager), so the
first run needs no broker; with a broker (e.g. redis://127.0.0.1:6379/0) they run on workers."""
from __future__ import annotations

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
