"""The SageMaker backend of the model registry: Model Package Groups, with artefacts in S3.

Layout (one registry = one S3 location ``s3://BUCKET/PREFIX`` plus the account's groups)::

    model NAME          -> Model Package Group NAME, tagged opsbench:registry=s3://BUCKET/PREFIX
    version N of NAME   -> Model Package NAME/N: its container's ModelDataUrl is the tarball
                           s3://BUCKET/PREFIX/NAME/N/model.tar.gz of the artefact folder, its
                           CustomerMetadataProperties the ModelCard (see below)
    alias A -> N        -> group tag opsbench:alias:A = "N"
    rollback targets    -> group tag opsbench:rollback = "N1 N2 ..." (earlier champions, the
                           last one first to come back)
    champion            -> also mirrored in ModelApprovalStatus: the champion's package is
                           Approved, a replaced one PendingManualApproval, a rolled-back one
                           Rejected (what SageMaker tooling keys on)

Why tags on the group: aliases are per model, change without touching any version, and the
protocol needs arbitrary aliases and a rollback history that SageMaker's one approval status
cannot express. Package metadata would do too, but ``update_model_package`` in moto erases
metadata it is not sent again, and every alias move would rewrite the card. moto's
``AddTags`` appends a second tag of the same key instead of replacing it (AWS replaces), so a
tag is moved by ``DeleteTags`` then ``AddTags``.

The card is JSON, zlib-compressed, base64-encoded and split into ``opsbench:card:NN`` values
of at most 256 characters: SageMaker allows 50 metadata entries, keys of 1-128 and values of
1-256 characters out of letters, digits, spaces and ``_.:/=+-@`` (base64's alphabet fits; JSON
does not). moto checks none of these limits, so :func:`encode_card` does.

Versions are numbered by SageMaker. The tarball is uploaded first, under the number the next
package will get (one more than the highest), with ``If-None-Match: *`` so that two
registrations never overwrite each other's artefact; the package then records the URL.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError

from agents.lifecycle.registry import (
    CHAMPION,
    ModelCard,
    ModelRef,
    ModelVersion,
    folder_digest,
)
from sim.errors import InputError, OpsbenchError

ClientFactory = Callable[[str], Any]

DEFAULT_PREFIX = "opsbench/models"
TAG_REGISTRY = "opsbench:registry"
TAG_ALIAS = "opsbench:alias:"
TAG_ROLLBACK = "opsbench:rollback"
CARD_KEY = "opsbench:card:"
META_AGENT = "opsbench:agent"
META_DIGEST = "opsbench:artefact-sha256"
MAX_METADATA_ENTRIES = 50
MAX_METADATA_KEY = 128
MAX_METADATA_VALUE = 256
MAX_CARD_CHUNKS = MAX_METADATA_ENTRIES - 2  # two readable entries: agent and digest
METADATA_CHARS = re.compile(r"^[\w\s.:/=+\-@]*$")  # SageMaker's pattern, ASCII letters only
ALIAS = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
TARBALL = "model.tar.gz"
CONTENT_TYPES = ["application/json"]
URI_ALLOWED = "sagemaker://BUCKET/PREFIX[?image=URI&region=REGION]"


class SageMakerError(OpsbenchError):
    """An AWS call failed for a reason that is not the user's input (one line)."""


def encode_card(card: ModelCard, *, source: str = "card") -> dict[str, str]:
    """The card as SageMaker CustomerMetadataProperties (InputError if it cannot be kept
    exactly: values that do not survive JSON, or more than SageMaker's 50 entries)."""
    text = card.model_dump_json()
    try:
        again = ModelCard.model_validate_json(text).model_dump_json()
    except ValidationError as exc:
        field = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise InputError(
            source, field, "does not survive JSON (NaN or infinity?)", "finite numbers"
        ) from None
    if again != text:
        raise InputError(source, "", "does not survive JSON unchanged", "JSON values")
    blob = base64.b64encode(zlib.compress(text.encode(), 9)).decode("ascii")
    chunks = [blob[i : i + MAX_METADATA_VALUE] for i in range(0, len(blob), MAX_METADATA_VALUE)]
    if len(chunks) > MAX_CARD_CHUNKS:
        raise InputError(
            source,
            "",
            f"is {len(blob)} characters compressed, more than SageMaker's metadata holds",
            f"at most {MAX_CARD_CHUNKS * MAX_METADATA_VALUE} (fewer params, metrics or libraries)",
        )
    properties = {f"{CARD_KEY}{i:02d}": chunk for i, chunk in enumerate(chunks)}
    properties[META_AGENT] = card.agent
    properties[META_DIGEST] = card.artefact_sha256
    return properties


def decode_card(properties: Mapping[str, str], *, source: str) -> ModelCard:
    """The card :func:`encode_card` stored; InputError naming ``source`` if it is missing or
    damaged."""
    chunks = sorted((k, v) for k, v in properties.items() if k.startswith(CARD_KEY))
    expected = [f"{CARD_KEY}{i:02d}" for i in range(len(chunks))]
    if not chunks or [k for k, _ in chunks] != expected:
        raise InputError(
            source,
            "CustomerMetadataProperties",
            "has no complete model card",
            "a package registered by opsbench",
        )
    try:
        text = zlib.decompress(base64.b64decode("".join(v for _, v in chunks), validate=True))
        return ModelCard.model_validate_json(text)
    except (binascii.Error, zlib.error, ValidationError) as exc:
        problem = " ".join(str(exc).split())[:200]
        raise InputError(
            source,
            "CustomerMetadataProperties",
            f"model card is damaged: {problem}",
            "a package registered by opsbench",
        ) from None


def pack_folder(folder: Path) -> bytes:
    """A gzip'd tar of every regular file below ``folder`` (sorted, no times or owners, so the
    same folder always gives the same bytes); symlinks and special files are refused."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped:
        with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(folder.rglob("*")):
                if path.is_symlink() or not (path.is_file() or path.is_dir()):
                    raise InputError(path, "", "is not a plain file or folder", "plain files")
                info = tarfile.TarInfo(path.relative_to(folder).as_posix())
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                if path.is_dir():
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                else:
                    data = path.read_bytes()
                    info.size, info.mode = len(data), 0o644
                    tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpack_tarball(tarball: Path, into: Path, *, source: str) -> None:
    """Extract ``tarball`` into the (empty) folder ``into``: regular files and folders with
    relative paths only; links, devices, absolute paths and ``..`` are an InputError."""
    try:
        with tarfile.open(tarball, mode="r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                parts = PurePosixPath(member.name).parts
                if not (member.isfile() or member.isdir()):
                    raise InputError(
                        source,
                        member.name,
                        "is a link or special file",
                        "regular files and folders",
                    )
                if member.name.startswith("/") or ".." in parts:
                    raise InputError(
                        source, member.name, "points outside the artefact folder", "relative paths"
                    )
            tar.extractall(into, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise InputError(
            source, "", f"is not a readable tar.gz: {exc}", "a tarball written by the registry"
        ) from None


@dataclass(frozen=True, slots=True)
class S3Url:
    bucket: str
    key: str

    @classmethod
    def parse(cls, url: str, *, source: str) -> S3Url:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
            raise InputError(
                source, "ModelDataUrl", f"{url!r} is not an S3 object URL", "s3://BUCKET/KEY"
            )
        return cls(parts.netloc, parts.path.lstrip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _error_message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return " ".join(f"{error.get('Code', '')}: {error.get('Message', '')}".split())[:300]
    return " ".join(str(exc).split())[:300]


def is_not_found(exc: Exception) -> bool:
    """True for SageMaker's way of saying a resource does not exist (a ValidationException
    whose message says so) and S3's 404s."""
    code = _error_code(exc)
    if code in ("NoSuchKey", "404", "NotFound", "ResourceNotFound"):
        return True
    message = _error_message(exc).lower()
    return code == "ValidationException" and any(
        words in message for words in ("does not exist", "not found", "could not find")
    )


class SageMakerRegistry:
    """:class:`~agents.lifecycle.registry.ModelRegistry` on SageMaker Model Package Groups and
    S3 (layout in the module docstring).

    Parameters
    ----------
    bucket, prefix
        Where the artefact tarballs go: ``s3://bucket/prefix/NAME/VERSION/model.tar.gz``.
    image
        The inference container image URI recorded in every package registered (required to
        register; deploy uses it unless told another).
    client_factory
        ``client_factory("sagemaker")`` / ``("s3")`` gives a boto3 client (default:
        ``boto3.client(service, region_name=region)``).
    region
        The AWS region of the default clients.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = DEFAULT_PREFIX,
        *,
        image: str | None = None,
        client_factory: ClientFactory | None = None,
        region: str | None = None,
    ) -> None:
        if not BUCKET.match(bucket):
            raise InputError(
                "registry", "bucket", f"{bucket!r} is not an S3 bucket name", "3-63 of a-z 0-9 . -"
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.image = image
        if client_factory is None:
            import boto3

            def client_factory(service: str) -> Any:
                return boto3.client(service, region_name=region)

        self._sagemaker = client_factory("sagemaker")
        self._s3 = client_factory("s3")

    @property
    def uri(self) -> str:
        return f"sagemaker://{self.bucket}/{self.prefix}"

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    # -- AWS calls -----------------------------------------------------------------------

    def _call(self, client: Any, operation: str, **params: Any) -> Any:
        """``client.operation(**params)``; any failure is one line (not-found ones are left
        to the caller: see :func:`is_not_found`)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(client, operation)(**params)
        except ClientError as exc:
            if is_not_found(exc):
                raise
            raise SageMakerError(f"{self.uri}: {operation} failed: {_error_message(exc)}") from None
        except BotoCoreError as exc:
            raise SageMakerError(f"{self.uri}: {operation} failed: {_error_message(exc)}") from None

    def _pages(self, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paginated SageMaker list call."""
        token: str | None = None
        while True:
            page = self._call(
                self._sagemaker, operation, **params, **({"NextToken": token} if token else {})
            )
            yield from page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return

    def _group_arn(self, name: str) -> str:
        from botocore.exceptions import ClientError

        try:
            group = self._call(
                self._sagemaker, "describe_model_package_group", ModelPackageGroupName=name
            )
        except ClientError:
            raise InputError(self.uri, name, f"no model {name!r}", self._known_models()) from None
        return str(group["ModelPackageGroupArn"])

    def _tags(self, arn: str) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self._pages("list_tags", "Tags", ResourceArn=arn)}

    def _owned_tags(self, name: str) -> tuple[str, dict[str, str]]:
        """The group of model ``name`` and its tags; InputError unless this registry made it."""
        arn = self._group_arn(name)
        tags = self._tags(arn)
        owner = tags.get(TAG_REGISTRY)
        if owner != self.location:
            where = f"registry {owner}" if owner else "no opsbench registry"
            raise InputError(
                self.uri,
                name,
                f"model package group {name!r} belongs to {where}",
                f"a model of {self.location}",
            )
        return arn, tags

    def _set_tags(self, arn: str, tags: Mapping[str, str], remove: tuple[str, ...] = ()) -> None:
        keys = [*tags, *remove]
        if keys:
            self._call(self._sagemaker, "delete_tags", ResourceArn=arn, TagKeys=keys)
        if tags:
            self._call(
                self._sagemaker,
                "add_tags",
                ResourceArn=arn,
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )

    def _known_models(self) -> str:
        names = [
            g["ModelPackageGroupName"]
            for g in self._pages("list_model_package_groups", "ModelPackageGroupSummaryList")
        ]
        return "a registered model: " + (", ".join(sorted(names)) if names else "(none yet)")

    def _package_summaries(self, name: str) -> list[dict[str, Any]]:
        summaries = self._pages(
            "list_model_packages", "ModelPackageSummaryList", ModelPackageGroupName=name
        )
        return sorted(summaries, key=lambda s: int(s["ModelPackageVersion"]))

    def _describe(self, group_arn: str, name: str, version: int) -> dict[str, Any]:
        """Version ``version`` of the model whose group is ``group_arn`` (InputError if none)."""
        from botocore.exceptions import ClientError

        arn = group_arn.replace(":model-package-group/", ":model-package/") + f"/{version}"
        try:
            return dict(self._call(self._sagemaker, "describe_model_package", ModelPackageName=arn))
        except ClientError:
            known = [int(s["ModelPackageVersion"]) for s in self._package_summaries(name)]
            raise InputError(
                self.uri,
                f"{name}/{version}",
                f"model {name!r} has no version {version}",
                f"versions {_numbers(known)}",
            ) from None

    # -- reading -------------------------------------------------------------------------

    def _version(
        self, name: str, package: Mapping[str, Any], tags: Mapping[str, str]
    ) -> ModelVersion:
        number = int(package["ModelPackageVersion"])
        source = str(package["ModelPackageArn"])
        card = decode_card(package.get("CustomerMetadataProperties", {}), source=source)
        containers = package.get("InferenceSpecification", {}).get("Containers", [])
        if not containers or "ModelDataUrl" not in containers[0]:
            raise InputError(
                source,
                "InferenceSpecification",
                "has no ModelDataUrl",
                "a package registered by opsbench",
            )
        created = package.get("CreationTime", "")
        return ModelVersion(
            name=name,
            version=number,
            card=card,
            aliases=tuple(sorted(a for a, v in _aliases(tags).items() if v == number)),
            location=str(containers[0]["ModelDataUrl"]),
            created=created.isoformat() if isinstance(created, datetime) else str(created),
            extra={
                "model_package_arn": source,
                "approval_status": package.get("ModelApprovalStatus", ""),
                "image": containers[0].get("Image", ""),
            },
        )

    def resolve(self, ref: ModelRef) -> ModelVersion:
        """The version ``ref`` names (InputError for an unknown name, alias or version)."""
        group_arn, tags = self._owned_tags(ref.name)
        number = ref.version
        if number is None:
            aliases = _aliases(tags)
            if ref.alias not in aliases:
                shown = ", ".join(sorted(aliases)) or "none set"
                raise InputError(
                    self.uri,
                    str(ref),
                    f"model {ref.name!r} has no alias {ref.alias!r}",
                    f"aliases: {shown}",
                )
            number = aliases[str(ref.alias)]
        return self._version(ref.name, self._describe(group_arn, ref.name, number), tags)

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        """Every version of ``name`` (of every model of this registry if None), oldest first."""
        if name is not None:
            names = [name]
        else:
            names = sorted(
                g["ModelPackageGroupName"]
                for g in self._pages("list_model_package_groups", "ModelPackageGroupSummaryList")
                if self._tags(g["ModelPackageGroupArn"]).get(TAG_REGISTRY) == self.location
            )
        found: list[ModelVersion] = []
        for model in names:
            group_arn, tags = self._owned_tags(model)
            for summary in self._package_summaries(model):
                package = self._describe(group_arn, model, int(summary["ModelPackageVersion"]))
                found.append(self._version(model, package, tags))
        return found

    # -- writing -------------------------------------------------------------------------

    def register(self, name: str, artefact_dir: Path, card: ModelCard) -> ModelVersion:
        """Upload the folder's tarball and create the next Model Package of group ``name``
        (the group is created, tagged as this registry's, if new)."""
        ModelRef.parse(name, source="model name")
        if not SAGEMAKER_NAME.match(name):
            raise InputError(
                "model name",
                "",
                f"{name!r} is not a SageMaker group name",
                "letters, digits and single hyphens inside",
            )
        if self.image is None:
            raise InputError(
                self.uri,
                "image",
                "no container image to record in the model package",
                "image=URI in the registry URI or SageMakerRegistry(image=...)",
            )
        if not artefact_dir.is_dir():
            raise InputError(artefact_dir, "", "is not a folder", "an artefact folder")
        digest = folder_digest(artefact_dir)
        if digest != card.artefact_sha256:
            raise InputError(
                artefact_dir,
                "artefact_sha256",
                f"the card says {card.artefact_sha256}, the folder is {digest}",
                "the folder's digest",
            )
        metadata = encode_card(card, source=f"{name} card")
        tarball = pack_folder(artefact_dir)
        _, tags = self._ensure_group(name)
        numbers = [int(s["ModelPackageVersion"]) for s in self._package_summaries(name)]
        url = S3Url(
            self.bucket, f"{self.prefix}/{name}/{max(numbers, default=0) + 1}/{TARBALL}".lstrip("/")
        )
        self._upload(url, tarball)
        created = self._call(
            self._sagemaker,
            "create_model_package",
            ModelPackageGroupName=name,
            ModelPackageDescription=card.description[:1000],
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [{"Image": self.image, "ModelDataUrl": str(url)}],
                "SupportedContentTypes": CONTENT_TYPES,
                "SupportedResponseMIMETypes": CONTENT_TYPES,
            },
            CustomerMetadataProperties=metadata,
        )
        package = self._call(
            self._sagemaker, "describe_model_package", ModelPackageName=created["ModelPackageArn"]
        )
        return self._version(name, package, tags)

    def _ensure_group(self, name: str) -> tuple[str, dict[str, str]]:
        """The group of model ``name`` and its tags, created (tagged as this registry's) if
        there is none; InputError if another registry owns it."""
        from botocore.exceptions import ClientError

        try:
            self._call(self._sagemaker, "describe_model_package_group", ModelPackageGroupName=name)
        except ClientError:
            created = self._call(
                self._sagemaker,
                "create_model_package_group",
                ModelPackageGroupName=name,
                ModelPackageGroupDescription=f"opsbench model {name}",
                Tags=[{"Key": TAG_REGISTRY, "Value": self.location}],
            )
            return str(created["ModelPackageGroupArn"]), {TAG_REGISTRY: self.location}
        return self._owned_tags(name)

    def _upload(self, url: S3Url, tarball: bytes) -> None:
        """Put the tarball unless the key exists (``If-None-Match: *``)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._s3.put_object(Bucket=url.bucket, Key=url.key, Body=tarball, IfNoneMatch="*")
        except ClientError as exc:
            if _error_code(exc) == "PreconditionFailed":
                raise SageMakerError(
                    f"{url}: already exists (a registration of the same version is under way or "
                    "was interrupted); try again, or delete the object if no package uses it"
                ) from None
            raise SageMakerError(f"{url}: upload failed: {_error_message(exc)}") from None
        except BotoCoreError as exc:
            raise SageMakerError(f"{url}: upload failed: {_error_message(exc)}") from None

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` of ``name`` at ``version`` (the champion's approval status follows)."""
        if not ALIAS.match(alias):
            raise InputError(
                "alias",
                "",
                f"{alias!r} is not an alias",
                "a-z, digits and hyphens, 1-32, a letter first",
            )
        arn, tags = self._owned_tags(name)
        package = self._describe(arn, name, version)
        if alias == CHAMPION:
            self._approve(arn, name, package, _aliases(tags).get(CHAMPION), "set as champion")
        self._set_tags(arn, {TAG_ALIAS + alias: str(version)})

    def remove_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` of ``name`` (its group tag), if set."""
        if alias == CHAMPION:
            raise ValueError("the champion alias is moved by promote and rollback only")
        arn, tags = self._owned_tags(name)
        if alias in _aliases(tags):
            self._set_tags(arn, {}, remove=(TAG_ALIAS + alias,))

    def promote(self, name: str, version: int) -> ModelVersion:
        """Make ``version`` the champion; the replaced champion goes on the rollback stack."""
        arn, tags = self._owned_tags(name)
        package = self._describe(arn, name, version)
        old = _aliases(tags).get(CHAMPION)
        if old == version:
            return self._version(name, package, tags)
        stack = _rollback_stack(tags)
        if old is not None:
            stack.append(old)
        self._approve(
            arn, name, package, old, f"promoted over version {old}" if old else "promoted"
        )
        updates = {TAG_ALIAS + CHAMPION: str(version), TAG_ROLLBACK: _stack_text(stack)}
        self._set_tags(
            arn, {k: v for k, v in updates.items() if v}, remove=() if stack else (TAG_ROLLBACK,)
        )
        return self.resolve(ModelRef(name, CHAMPION))

    def rollback(self, name: str) -> ModelVersion:
        """Make the champion before the last promotion champion again (the one rolled back is
        Rejected); InputError if no promotion replaced a champion."""
        arn, tags = self._owned_tags(name)
        stack = _rollback_stack(tags)
        if not stack:
            raise InputError(
                self.uri,
                name,
                f"model {name!r} has no earlier champion to roll back to",
                "a model promoted at least twice",
            )
        target = stack.pop()
        current = _aliases(tags).get(CHAMPION)
        package = self._describe(arn, name, target)
        self._approve(
            arn,
            name,
            package,
            current,
            f"rolled back to version {target}",
            demoted_status="Rejected",
        )
        self._set_tags(
            arn,
            {
                TAG_ALIAS + CHAMPION: str(target),
                **({TAG_ROLLBACK: _stack_text(stack)} if stack else {}),
            },
            remove=() if stack else (TAG_ROLLBACK,),
        )
        return self.resolve(ModelRef(name, CHAMPION))

    def _approve(
        self,
        group_arn: str,
        name: str,
        package: Mapping[str, Any],
        demoted: int | None,
        why: str,
        *,
        demoted_status: str = "PendingManualApproval",
    ) -> None:
        """Mirror a champion change in the approval statuses (metadata is sent again: moto
        erases what an update does not repeat)."""
        new = int(package["ModelPackageVersion"])
        if demoted is not None and demoted != new:
            old = self._describe(group_arn, name, demoted)
            self._update_status(old, demoted_status, f"{why}: version {new} is champion")
        self._update_status(package, "Approved", why)

    def _update_status(self, package: Mapping[str, Any], status: str, why: str) -> None:
        self._call(
            self._sagemaker,
            "update_model_package",
            ModelPackageArn=package["ModelPackageArn"],
            ModelApprovalStatus=status,
            ApprovalDescription=why[:1000],
            CustomerMetadataProperties=dict(package.get("CustomerMetadataProperties", {})),
        )

    # -- fetching ------------------------------------------------------------------------

    def fetch(self, version: ModelVersion, into: Path) -> Path:
        """Download and unpack the version's tarball into ``into`` (a new or empty folder) and
        check its digest against the card before returning ``into``; on a mismatch nothing is
        left behind and it is an InputError."""
        from botocore.exceptions import ClientError

        source = version.location or version.ref
        url = S3Url.parse(version.location, source=version.ref)
        if into.exists() and (not into.is_dir() or any(into.iterdir())):
            raise InputError(into, "", "exists and is not an empty folder", "a new or empty folder")
        into.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{into.name}.partial-", dir=into.parent))
        try:
            tarball = staging / TARBALL
            try:
                with tarball.open("wb") as sink:
                    body = self._call(self._s3, "get_object", Bucket=url.bucket, Key=url.key)[
                        "Body"
                    ]
                    shutil.copyfileobj(body, sink)
            except ClientError:
                raise InputError(
                    source,
                    version.ref,
                    "the artefact tarball is missing",
                    "the object the package names",
                ) from None
            folder = staging / "artefact"
            folder.mkdir()
            unpack_tarball(tarball, folder, source=source)
            digest = folder_digest(folder)
            if digest != version.card.artefact_sha256:
                raise InputError(
                    source,
                    "artefact_sha256",
                    f"the artefact's digest is {digest}, "
                    f"its card says {version.card.artefact_sha256}",
                    "an unaltered artefact",
                )
            if into.exists():
                into.rmdir()
            folder.replace(into)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return into


def _aliases(tags: Mapping[str, str]) -> dict[str, int]:
    return {k[len(TAG_ALIAS) :]: int(v) for k, v in tags.items() if k.startswith(TAG_ALIAS)}


def _rollback_stack(tags: Mapping[str, str]) -> list[int]:
    return [int(v) for v in tags.get(TAG_ROLLBACK, "").split()]


def _stack_text(stack: list[int]) -> str:
    """The rollback stack as a tag value: the latest entries that fit SageMaker's 256."""
    text = " ".join(str(v) for v in stack)
    while len(text) > MAX_METADATA_VALUE:
        stack = stack[1:]
        text = " ".join(str(v) for v in stack)
    return text


def _numbers(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers) if numbers else "none yet"


def sagemaker_registry_from_uri(
    uri: str, *, endpoint_url: str | None = None, client_factory: ClientFactory | None = None
) -> SageMakerRegistry:
    """A registry from ``sagemaker://BUCKET/PREFIX[?image=URI&region=REGION]`` (the prefix
    defaults to ``opsbench/models``); ``endpoint_url`` points its clients elsewhere (moto)."""
    parts = urlsplit(uri)
    if parts.scheme != "sagemaker" or not parts.netloc or parts.fragment:
        raise InputError("--registry", "", f"{uri!r} is not a SageMaker registry URI", URI_ALLOWED)
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(query) - {"image", "region"})
    if unknown or any(len(v) != 1 or not v[0] for v in query.values()):
        raise InputError(
            "--registry",
            ", ".join(unknown) or "query",
            f"{uri!r} has unknown or repeated parameters",
            URI_ALLOWED,
        )
    region = query["region"][0] if "region" in query else None
    if client_factory is None:
        import boto3

        def client_factory(service: str) -> Any:
            return boto3.client(service, region_name=region, endpoint_url=endpoint_url)

    return SageMakerRegistry(
        parts.netloc,
        parts.path.strip("/") or DEFAULT_PREFIX,
        image=query["image"][0] if "image" in query else None,
        client_factory=client_factory,
        region=region,
    )
