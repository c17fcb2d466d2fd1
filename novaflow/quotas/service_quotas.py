"""The account's SageMaker training quotas, read from Service Quotas; the settings when the caller may not read them.

SageMaker publishes one quota per instance type and use, named ``<type> for training job usage`` and counted in
instances (docs/quotas.md#where-the-numbers-come-from). Evaluation jobs are training jobs, so they draw on the same
quotas. Reading them needs ``servicequotas:ListServiceQuotas``; a role without it (or a region without the
service) is common, so that is a fallback to ``NOVAFLOW_QUOTAS`` / ``--quota``, said once in the log, never an
error. A setting may also lower a quota Service Quotas reports (novaflow's share of a shared account), never
raise it: AWS would refuse the excess anyway.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from novaflow.aws import error_code, error_message, get_client
from novaflow.quotas.capacity import Capacity, CapacityBook, CapacitySource, book_from_mapping
from novaflow.settings import NovaflowSettings

log = logging.getLogger(__name__)
SERVICE_CODE = "sagemaker"
TRAINING_QUOTA_RE = re.compile(r"^(ml\.[a-z0-9]+\.[a-z0-9]+) for training job usage$")


@dataclass(frozen=True)
class QuotaReading:
    """What Service Quotas said: the book, or why it could not be read (the reason goes into the run log)."""

    book: CapacityBook
    unavailable: str | None = None


def training_quota_type(quota_name: str) -> str | None:
    """``ml.p5.48xlarge`` for ``ml.p5.48xlarge for training job usage``; None for any other quota."""
    match = TRAINING_QUOTA_RE.match(quota_name.strip())
    return match.group(1) if match else None


def read_service_quotas(settings: NovaflowSettings) -> QuotaReading:
    """Every ``... for training job usage`` quota of the account in the settings' region."""
    client = get_client("service-quotas", settings)
    capacities: list[Capacity] = []
    try:
        for page in client.get_paginator("list_service_quotas").paginate(ServiceCode=SERVICE_CODE):
            for quota in page.get("Quotas", []):
                instance_type = training_quota_type(str(quota.get("QuotaName", "")))
                if instance_type is None or quota.get("Value") is None:
                    continue
                code = quota.get("QuotaCode", "?")
                capacities.append(Capacity(instance_type, int(quota["Value"]), "instances", f"Service Quotas {code}"))
    except ClientError as exc:
        reason = f"{error_code(exc)}: {error_message(exc)}"
        return QuotaReading(CapacityBook(), f"Service Quotas could not be read ({reason})")
    except BotoCoreError as exc:
        return QuotaReading(CapacityBook(), f"Service Quotas could not be read ({exc})")
    return QuotaReading(CapacityBook(capacities))


def resolve_capacities(
    settings: NovaflowSettings,
    overrides: Mapping[str, int] | None = None,
    *,
    read_account: bool = True,
    sources: Iterable[CapacitySource] = (),
) -> tuple[CapacityBook, list[str]]:
    """The run's capacities and the log lines that say where each came from.

    Service Quotas first (when ``read_account`` and the caller may), and any other ``sources`` (HyperPod
    clusters); then ``NOVAFLOW_QUOTAS``; then ``overrides`` (``--quota`` / the flow's ``wait.quotas``). For a key
    known to several, the smallest value wins.
    """
    notes: list[str] = []
    book = CapacityBook()
    if read_account:
        reading = read_service_quotas(settings)
        if reading.unavailable:
            notes.append(f"{reading.unavailable}; using the quotas in settings")
        book = reading.book
    for source in sources:
        book = book.merged(source.read())
    book = book.merged(book_from_mapping(settings.quotas, "settings NOVAFLOW_QUOTAS"))
    if overrides:
        book = book.merged(book_from_mapping(dict(overrides), "--quota / wait.quotas"))
    notes.extend(f"quota {line}" for line in book.describe())
    return book, notes
