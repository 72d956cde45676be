"""An invoice service: a FastAPI app that schedules jobs and a worker process that runs them.

Run it (from the ``examples`` folder, PostgreSQL at ``DATABASE_URL``)::

    algajobs migrate
    python -m fastapi_service.worker              # terminal 1: runs the jobs
    uvicorn fastapi_service.app:app --port 8000   # terminal 2: schedules them

    curl -X POST localhost:8000/invoices -H 'X-Tenant-ID: acme' \\
         -H 'Content-Type: application/json' -d '{"customer_id": "c-42", "amount_cents": 1999}'
    curl localhost:8000/jobs/<job_id> -H 'X-Tenant-ID: acme'
"""
