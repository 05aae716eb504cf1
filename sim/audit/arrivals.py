"""Benign principals that appear mid-replay with habits nobody in the account has.

A scenario's ``audit.arrivals`` (:class:`sim.scenario.PrincipalArrival`) declares them;
:func:`arrival_records` draws one arrival's sessions from its own component stream
(``audit-arrival-<id>``), so declaring an arrival changes no other record of the replay.
The only kind so far is ``service-account``: a data pipeline's role (an ECS Fargate task
whose every run gets a public address) calling Glue, Athena, Kinesis, Firehose, EMR
Serverless, S3 and Secrets Manager, which no principal of :mod:`sim.audit.principals`
calls together, with clients never seen before, at its own hours. Its calls are labelled
``normal`` with principal kind ``service-account``.

This module is not part of the shipped analyser's training (the modules hashed into its
cache key, :data:`bench.security_model._SOURCES`): the training accounts never hold an
arrival. Times are seconds from the replay start; hours are UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from sim.audit.generator import DAY_S, AuditGenerator, AuditLabel
from sim.audit.principals import Habits, Principal, access_key_id, zipf_weights
from sim.audit.vocabulary import READS, public_ip, sample_apis, with_version
from sim.scenario import PrincipalArrival
from sim.seeding import component_rng

ARRIVAL_KIND = "service-account"
"""The principal kind (in the labels) of a benign principal arriving mid-replay."""

UA_DATA_PIPELINE = (
    "aws-sdk-java/2.20.{v} Linux/5.10.186-179.751.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/11.0.20 "
    "Java/11.0.20 vendor/Amazon.com_Inc. exec-env/AWS_ECS_FARGATE io/sync http/Apache "
    "cfg/retry-mode/standard spark/3.4.{v} app/nightly-etl",
    "Boto3/1.28.{v} md/Botocore#1.31.{v} ua/2.0 os/linux#5.10.186 md/arch#x86_64 "
    "lang/python#3.10.12 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE apache-airflow/2.7.{v}",
)
"""The clients of a data pipeline's service account."""

DATA_PIPELINE_APIS: tuple[tuple[str, str], ...] = (
    ("glue", "GetTable"),
    ("glue", "GetPartitions"),
    ("glue", "BatchCreatePartition"),
    ("glue", "StartJobRun"),
    ("glue", "GetJobRun"),
    ("athena", "StartQueryExecution"),
    ("athena", "GetQueryExecution"),
    ("athena", "GetQueryResults"),
    ("kinesis", "DescribeStreamSummary"),
    ("kinesis", "GetShardIterator"),
    ("firehose", "PutRecordBatch"),
    ("firehose", "DescribeDeliveryStream"),
    ("emr-serverless", "StartJobRun"),
    ("emr-serverless", "GetJobRun"),
    ("s3", "GetBucketLocation"),
    ("secretsmanager", "GetSecretValue"),
)
"""What a data pipeline's role calls (Zipf weights drawn per principal)."""

UNCALLED_READS = frozenset({("s3", "ListBuckets"), ("sts", "GetCallerIdentity")})
"""Reads the pipeline never makes (it knows its buckets and its identity): the two reads
of :data:`~sim.audit.vocabulary.READS` that the SigmaHQ CloudTrail rules name, so that
the arrival is a principal the rules do not flag and only a learnt model might."""


def arriving_principal(
    arrival: PrincipalArrival, *, account_id: str, rng: np.random.Generator
) -> Principal:
    """The principal ``arrival`` declares: an assumed role named after its id with the
    habits above plus ``arrival.read_apis`` reads drawn across the account's services (a
    catalogue crawler's), ``arrival.networks`` public addresses (one drawn per session)."""
    arn = f"arn:aws:sts::{account_id}:assumed-role/{arrival.id}/etl-task"
    identity = {
        "type": "AssumedRole",
        "arn": arn,
        "userName": arrival.id,
        "accountId": account_id,
        "accessKeyId": access_key_id("ASIA", rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    }
    reads = {
        svc: [n for n in names if (svc, n) not in UNCALLED_READS] for svc, names in READS.items()
    }
    apis = DATA_PIPELINE_APIS + tuple(sample_apis(rng, reads, arrival.read_apis))
    return Principal(
        identity=identity,
        networks=tuple(public_ip(rng) for _ in range(arrival.networks)),
        user_agents=tuple(with_version(t, rng) for t in UA_DATA_PIPELINE),
        apis=apis,
        weights=zipf_weights(rng, len(apis)),
        hours=arrival.hours,
        weekdays_only=False,
        habits=Habits(
            ARRIVAL_KIND,
            sessions_per_day=arrival.sessions_per_day,
            calls_per_session=arrival.calls_per_session,
            gap_s=arrival.gap_s,
            error_rate=0.02,
        ),
    )


def arrival_records(
    arrival: PrincipalArrival,
    *,
    seed: int,
    account_id: str,
    region: str,
    start: datetime,
    duration_s: float,
) -> tuple[list[dict[str, Any]], list[AuditLabel]]:
    """The records (event-time order) and labels of ``arrival``'s sessions in
    ``[at_h, duration_s)``: drawn day by day from the midnight before ``at_h`` (so its
    hours stay UTC hours), the records before ``at_h`` dropped."""
    rng = component_rng(seed, f"audit-arrival-{arrival.id}")
    principal = arriving_principal(arrival, account_id=account_id, rng=rng)
    at_s = arrival.at_h * 3600.0
    day0 = float(np.floor(at_s / DAY_S) * DAY_S)
    if day0 >= duration_s:
        return [], []
    origin = start + timedelta(seconds=day0)
    gen = AuditGenerator(account_id=account_id, region=region, start=origin, rng=rng)
    gen.benign([principal], duration_s - day0)
    records, labels = gen.take()
    cut = (origin + timedelta(seconds=at_s - day0)).strftime("%Y-%m-%dT%H:%M:%SZ")
    keep = [i for i, rec in enumerate(records) if rec["eventTime"] >= cut]
    return [records[i] for i in keep], [labels[i] for i in keep]
