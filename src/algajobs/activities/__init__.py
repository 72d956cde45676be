"""Temporal activities: ``executeJobHandler``, ``updateJobStatus``, ``createJobDetail``."""

from .job_activities import JobActivities

__all__ = ["JobActivities"]
