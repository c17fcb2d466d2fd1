"""The bookkeeping Bedrock's resources share, written once: a table of items and the List* filters and pages.

Model customization jobs (:mod:`novaflow.local.aws.moto_bedrock`), model invocation (batch inference) jobs
(:mod:`novaflow.local.aws.moto_invocation_jobs`), custom-model deployments and provisioned throughputs follow the
same rules on AWS: a create repeated with the same ``clientRequestToken`` returns the first item, a new one under a
name already taken is a ``ConflictException``, an item is found by its ARN or its name (URL-encoded in the path),
and the List* calls filter, sort (newest first unless ``sortOrder`` is ``Ascending``) and page the same way; a
finished job cannot be stopped. What differs per kind (the fields, how the status moves) stays in the items, which
only need the few members of :class:`Item` (and :class:`Job` to be stopped).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import unquote

from moto.bedrock.exceptions import ResourceNotFoundException
from moto.core.exceptions import ServiceException


class ConflictException(ServiceException):
    code = "ConflictException"


class ValidationException(ServiceException):
    """moto's Bedrock ValidationException replaces the message with a generic one; AWS names the problem."""

    code = "ValidationException"


class Item(Protocol):
    """What the table needs of an item; its kind decides its fields and how its status moves."""

    @property
    def arn(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def token(self) -> str | None: ...

    @property
    def status(self) -> str: ...

    def describe(self) -> dict[str, Any]:
        """What Get* answers."""
        ...

    def summary(self) -> dict[str, Any]:
        """The item's entry in List* (reading it does not move the status on)."""
        ...


class Job(Item, Protocol):
    def stop(self) -> None:
        """Start stopping the job (it is not finished: the table checked)."""
        ...


T = TypeVar("T", bound=Item)
J = TypeVar("J", bound=Job)


@dataclass(frozen=True)
class Listing:
    """How List* answers for one kind: the page's key, the summary's name field, the creation-time field and the
    request's bounds on it."""

    key: str
    name: str
    created: str
    before: str
    after: str


class BedrockTable(Generic[T]):
    """The items of one kind keyed by ARN, with one lock (re-entrant: a job's ``stop`` may update it under it)."""

    def __init__(self, label: str, conflict: str, listing: Listing, terminal: frozenset[str] = frozenset()) -> None:
        self.label = label
        self.conflict = conflict
        self.listing = listing
        self.terminal = terminal
        self.lock = threading.RLock()
        self._items: dict[str, T] = {}

    def create(self, name: str, token: str | None, make: Callable[[], T]) -> tuple[T, bool]:
        """The item that ``token`` already created (and False), or a new one from ``make`` (and True);
        ConflictException if ``name`` is taken. ``make`` runs under the lock, so two equal requests cannot both
        create."""
        with self.lock:
            for item in self._items.values():
                if token and item.token == token:
                    return item, False
                if item.name == name:
                    raise ConflictException(self.conflict.format(name=name))
            item = make()
            self._items[item.arn] = item
            return item, True

    def lookup(self, identifier: str) -> T | None:
        """The item by ARN or name; ``identifier`` as it stands in the request path (URL-encoded, maybe twice)."""
        identifier = decode(identifier)
        with self.lock:
            return next((i for i in self._items.values() if identifier in (i.arn, i.name)), None)

    def find(self, identifier: str) -> T:
        item = self.lookup(identifier)
        if item is None:
            raise ResourceNotFoundException(f"{self.label} {decode(identifier)} not found")
        return item

    def describe(self, identifier: str) -> dict[str, Any]:
        item = self.find(identifier)
        with self.lock:
            return item.describe()

    def delete(self, identifier: str) -> T:
        item = self.find(identifier)
        with self.lock:
            self._items.pop(item.arn, None)
        return item

    def stop(self: BedrockTable[J], identifier: str) -> None:
        """Stop a job still running; a finished one is refused with a ValidationException, as AWS does."""
        job = self.find(identifier)
        with self.lock:
            status = job.status
            if status in self.terminal:
                raise ValidationException(f"The job {job.arn} is {status} and cannot be stopped.")
            job.stop()

    def list_page(self, params: dict[str, Any], region: str, account: str) -> dict[str, Any]:
        """The List* answer for this account and region's items (see :func:`filter_page`)."""
        prefix = f"arn:aws:bedrock:{region}:{account}:"
        with self.lock:
            items = [item.summary() for item in self._items.values() if item.arn.startswith(prefix)]
        how = self.listing
        page, token = filter_page(
            params, items, name_key=how.name, created_key=how.created, before=how.before, after=how.after
        )
        return {how.key: page, **({"nextToken": token} if token else {})}

    def arns(self, prefix: str) -> list[str]:
        with self.lock:
            return [a for a in self._items if a.startswith(prefix)]

    def items(self) -> Iterator[T]:
        with self.lock:
            return iter(list(self._items.values()))

    def clear(self) -> None:
        with self.lock:
            self._items.clear()


def decode(path_part: str) -> str:
    """An identifier from a request path: boto3 URL-encodes an ARN, and the server's routing may encode it again."""
    return unquote(unquote(path_part))


def now() -> str:
    return datetime.now(UTC).isoformat()


def filter_page(
    params: dict[str, Any], items: list[dict[str, Any]], *, name_key: str, created_key: str, before: str, after: str
) -> tuple[list[dict[str, Any]], str | None]:
    """The List* filters, sort and pagination AWS applies (statusEquals, nameContains, modelArnEquals, the
    creation-time bounds, newest first unless sortOrder is Ascending, maxResults / nextToken)."""
    if params.get("statusEquals"):
        items = [i for i in items if i["status"] == params["statusEquals"]]
    if params.get("nameContains"):
        items = [i for i in items if params["nameContains"] in i[name_key]]
    if params.get("modelArnEquals"):
        items = [i for i in items if i["modelArn"] == decode(params["modelArnEquals"])]
    if params.get(before):
        items = [i for i in items if _when(i[created_key]) < _when(params[before])]
    if params.get(after):
        items = [i for i in items if _when(i[created_key]) > _when(params[after])]
    items.sort(key=lambda i: (_when(i[created_key]), i[name_key]), reverse=params.get("sortOrder") != "Ascending")
    start = int(params.get("nextToken") or 0)
    end = start + int(params.get("maxResults") or 1000)
    return items[start:end], (str(end) if end < len(items) else None)


def _when(value: str) -> datetime:
    stamp = datetime.fromisoformat(decode(value).replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
