"""Background jobs: generate images, train the generator and check a study's images by machine
through the generator's command line, on a task engine (Huey).

`study` imports nothing of `synth` but its contract (`synth.contract`): a job holds the
generator's requests and runs each as `python -m synth sample|train|evaluate|augment ...`, a
subprocess. The job's database row is the truth every process shares (state, progress, log
tail, result); the task engine carries only its id, to a thread of the app process (the default
SQLite queue) or of a worker on another machine (VTT_JOB_BROKER=redis://..., `python -m study
worker`).

- `states`: kinds, states, the view pages read, compare-and-set state changes
- `queue`: submit, get, list and cancel jobs
- `engine`: the Huey queue from the settings; the app's own consumer; the worker's loop
- `runner`: run one job (subprocess, progress, heartbeat, log tail, import)
- `generate`, `train`: the generator's two kinds of job and what the pages ask of them
- `machine`: the machine checks of a study's images (`evaluate`, `augment`); `machine_results`:
  their results as tables beside the readers'
- `checkpoints`: the checkpoints to choose from, the device jobs use
- `recovery`: failing the jobs whose runner died
- `processes`, `workdirs`: the runner's processes, the jobs' work folders
"""

from study.jobs.checkpoints import (
    DEMO_CHECKPOINT,
    DEMO_STUDENT,
    checkpoints_dir,
    job_device,
    list_checkpoints,
)
from study.jobs.engine import (
    max_jobs,
    remote_workers,
    require_broker,
    serve,
    start_consumer,
    stop_consumer,
)
from study.jobs.generate import (
    GenerateCell,
    SampleOptions,
    match_real_pool,
    preview_samples,
    submit_generate,
    submit_paired,
    t2w_assets,
)
from study.jobs.machine import (
    MACHINE_KINDS,
    StudyImages,
    latest_result,
    machine_jobs,
    study_images,
    submit_augmentation,
    submit_evaluation,
)
from study.jobs.processes import Runner, process_start, this_runner
from study.jobs.queue import cancel_job, get_job, list_jobs
from study.jobs.recovery import (
    RUNNER_SILENT,
    RUNNER_STOPPED,
    fail_silent_jobs,
    recover_jobs,
    stop_local_jobs,
)
from study.jobs.states import ACTIVE, JobError, JobKind, JobView
from study.jobs.train import (
    TrainingEstimate,
    TrainingSelection,
    can_resume,
    estimate_training,
    resume_training,
    selected_assets,
    submit_training,
    training_loss,
)
from study.models import JobState

__all__ = [
    "ACTIVE",
    "DEMO_CHECKPOINT",
    "DEMO_STUDENT",
    "MACHINE_KINDS",
    "RUNNER_SILENT",
    "RUNNER_STOPPED",
    "GenerateCell",
    "JobError",
    "JobKind",
    "JobState",
    "JobView",
    "Runner",
    "SampleOptions",
    "StudyImages",
    "TrainingEstimate",
    "TrainingSelection",
    "can_resume",
    "cancel_job",
    "checkpoints_dir",
    "estimate_training",
    "fail_silent_jobs",
    "get_job",
    "job_device",
    "latest_result",
    "list_checkpoints",
    "list_jobs",
    "machine_jobs",
    "match_real_pool",
    "max_jobs",
    "preview_samples",
    "process_start",
    "recover_jobs",
    "remote_workers",
    "require_broker",
    "resume_training",
    "selected_assets",
    "serve",
    "start_consumer",
    "stop_consumer",
    "stop_local_jobs",
    "study_images",
    "submit_augmentation",
    "submit_evaluation",
    "submit_generate",
    "submit_paired",
    "submit_training",
    "t2w_assets",
    "this_runner",
    "training_loss",
]
