"""Explain a whole data set: batch jobs on Ray Data (or in-process), resumable, read back by the dashboard.

``python -m jobs IMAGES --methods grad_cam,saliency --out results/`` (see ``docs/jobs.md``).
:func:`run_job` runs a :class:`JobRequest`; :mod:`jobs.output` reads a job's directory back
(the dashboard imports only that, and never Ray: Ray is imported only when a job runs on it).
"""

from jobs.engine import JobRequest, Summary, run_job
from jobs.inputs import JobError

__all__ = ["JobError", "JobRequest", "Summary", "run_job"]
