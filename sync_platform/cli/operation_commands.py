"""`clean-source`, `clean-exports` and `test-s3`: the operations on what syncs leave behind. The
cleanups are runs of the operation jobs, launched as the UI's launchpad launches them; the
terminal gets a one-line outcome, the run's full log stays in the instance."""

from __future__ import annotations

from .render import err, out


def _operation(args, job: str, op: str, config: dict):
    """Launch the operation job for the task, wait for it; its outcome (eventlog.RunOutcome)."""
    from ..defs.eventlog import run_outcome
    from ..defs.runner import code_location
    from ..platform import Platform

    Platform.from_file(args.config).table_sync(args.task, args.table)  # an unknown task or table: refused here
    with code_location(args.config) as launcher:
        run_id = launcher.launch(job, run_config={"ops": {op: {"config": config}}})
        launcher.wait([run_id])
        return run_outcome(launcher.instance, run_id)


def _failed(args, outcome) -> int:
    err(
        f"{args.command} {args.task}: {outcome.failure or outcome.run.status.value.lower()} (run "
        f"{outcome.run.run_id[:8]})"
    )
    return 1


def cmd_clean_source(args) -> int:
    from ..defs import naming

    config = {k: v for k, v in {
        "task": args.task, "table": args.table, "partition": args.partition, "where": args.where,
        "batch_size": args.batch_size, "dry_run": args.dry_run, "all_rows": args.all_rows, "force": args.force,
    }.items() if v is not None}
    outcome = _operation(args, naming.CLEAN_SOURCE_JOB, naming.CLEAN_SOURCE_OP, config)
    if outcome.run.status.value != "SUCCESS":
        return _failed(args, outcome)
    seen, run = outcome.observed[-1], outcome.run.run_id[:8]
    proof = "each proved identical in the target" if seen["verified"] else "without proof (forced)"
    if seen["status"] == "dry-run":
        out(f"dry-run: {seen['rows_matching'] - seen['rows_not_verified']} of {seen['rows_matching']} rows of "
            f"{seen['table']} would be deleted, {proof}; {seen['rows_not_verified']} not verified would be kept "
            f"({seen['interlock']}; run {run})")
    else:
        out(f"{seen['status']}: {seen['rows_deleted']} rows deleted from {seen['table']} in {seen['rounds']} rounds of "
            f"at most {seen['batch_size']}, {proof} ({seen['interlock']}; run {run})")
        if seen.get("earlier_attempts"):
            out(f"with {seen['earlier_attempts']} earlier interrupted attempt(s) at this slice: "
                f"{seen['rows_deleted_all_attempts']} rows deleted in all")
    out(f"each round: {seen['statement']}  parameters {seen['parameters']}")
    return 0


def cmd_clean_exports(args) -> int:
    from ..defs import naming

    config = {
        k: v for k, v in {"task": args.task, "table": args.table, "partition": args.partition}.items() if v is not None
    }
    outcome = _operation(args, naming.CLEAN_EXPORTS_JOB, naming.CLEAN_EXPORTS_OP, config)
    if outcome.run.status.value != "SUCCESS":
        return _failed(args, outcome)
    seen = outcome.observed[-1]
    out(f"{seen['status']}: {seen['objects_deleted']} objects under {seen['location']} (run {outcome.run.run_id[:8]})")
    return 0


def cmd_test_s3(args) -> int:
    """Exit 0 when the round trip succeeds, 1 naming the cause when it fails."""
    from ..config import load_config
    from ..engine.errors import StoreError
    from ..errors import UnknownName
    from ..platform import Platform

    try:
        store = Platform(load_config(args.config)).store_for(args.s3_config_id, args.bucket)
        store.round_trip()
    except (UnknownName, StoreError) as error:
        err(f"connection test failed: {error}")
        return 1
    out(f"connection test succeeded ({store.url('')}: put, get and delete)")
    return 0


def register(sub, config_option) -> None:
    clean = sub.add_parser(
        "clean-source", help="delete a task table's source rows that the target holds identically, in rounds"
    )
    clean.add_argument("task")
    clean.add_argument("--table", help="source or target table (for tasks of several tables)")
    clean.add_argument("--partition", help="partition key of a partitioned task, e.g. 2024-03-01")
    clean.add_argument("--where", help="custom WHERE (default: the task's filters and the partition's window)")
    clean.add_argument("--batch-size", type=int, help="rows per round, each its own transaction (default 10000)")
    clean.add_argument("--dry-run", action="store_true", default=None, help="only count the rows that would be deleted")
    clean.add_argument("--all-rows", action="store_true", default=None, help="allow deleting the whole table")
    clean.add_argument("--force", action="store_true", default=None,
                       help="clean without a passing check, or a table without a primary key (unproved)")
    config_option(clean)
    clean.set_defaults(func=cmd_clean_source)

    exports = sub.add_parser("clean-exports", help="delete a task table's (partition's) export files")
    exports.add_argument("task")
    exports.add_argument("--table")
    exports.add_argument("--partition")
    config_option(exports)
    exports.set_defaults(func=cmd_clean_exports)

    s3 = sub.add_parser("test-s3", help="test an S3 config: put, get and delete a small object")
    s3.add_argument("s3_config_id")
    s3.add_argument("--bucket", help="default: the config's bucket")
    config_option(s3)
    s3.set_defaults(func=cmd_test_s3)
