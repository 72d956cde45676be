"""Temporal workflows: ``genericJobWorkflow`` runs any registered handler.

Never imports ``algajobs.fallback``; sandbox-safe imports only.
"""

from .generic_job import WORKFLOW_NAME, GenericJobWorkflow

__all__ = ["WORKFLOW_NAME", "GenericJobWorkflow"]
