"""gunicorn's settings for Backoffice behind a reverse proxy (deploy/nginx.conf):
`gunicorn -c deploy/gunicorn.conf.py 'backoffice:create_app()'`. Every value can be overridden on
the command line or with GUNICORN_CMD_ARGS."""

bind = "127.0.0.1:8000"       # only the proxy reaches it
workers = 2                   # processes; about one per core
worker_class = "gthread"      # threads: Stripe delivers webhooks concurrently
threads = 8                   # requests at once per process
timeout = 60                  # a request stuck longer is ended and its worker restarted; syncs and
                              # month-end runs are background jobs and never count against it
graceful_timeout = 30         # on restart, requests in flight get this long to finish
keepalive = 5                 # seconds an idle proxy connection stays open (nginx keeps a pool)
max_requests = 10000          # a worker is replaced after this many requests ...
max_requests_jitter = 1000    # ... not all at once
