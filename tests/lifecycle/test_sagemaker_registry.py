"""What the SageMaker backend adds to the registry contract: SageMaker's metadata limits, the
approval-status mirror of the champion, the S3 layout, safe unpacking, and its URI."""

from __future__ import annotations

import io
import math
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
from aws_moto import TEST_BUCKET, TEST_IMAGE, TEST_PREFIX, MotoServer

from agents.lifecycle.registry import CHAMPION, ModelCard, ModelRef, folder_digest
from agents.lifecycle.sagemaker import (
    MAX_METADATA_ENTRIES,
    SageMakerRegistry,
    decode_card,
    encode_card,
    pack_folder,
    sagemaker_registry_from_uri,
    unpack_tarball,
)
from sim.errors import InputError

pytestmark = pytest.mark.aws

NAME = "scaling-default"
# SageMaker's CustomerMetadataProperties: 50 entries, keys 1-128, values 1-256 characters
# matching ^([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)$ (here restricted to ASCII)
METADATA_TEXT = re.compile(r"^[A-Za-z0-9 _.:/=+\-@]*$")


@pytest.fixture
def registry(moto: MotoServer) -> SageMakerRegistry:
    moto.client("s3").create_bucket(Bucket=TEST_BUCKET)
    return SageMakerRegistry(TEST_BUCKET, TEST_PREFIX, image=TEST_IMAGE, client_factory=moto.client)


def artefact(root: Path, label: str) -> tuple[Path, ModelCard]:
    folder = root / label
    folder.mkdir()
    (folder / "model.json").write_text(f'{{"label": "{label}"}}')
    return folder, ModelCard(agent="scaling", artefact_sha256=folder_digest(folder))


def test_a_large_card_is_kept_within_sagemaker_metadata_limits(
    registry: SageMakerRegistry, moto: MotoServer, tmp_path: Path
) -> None:
    folder, card = artefact(tmp_path, "big")
    card = card.model_copy(
        update={
            "metrics": {f"metric_{i:03d}_{'x' * 20}": i / 7 for i in range(200)},
            "description": "é — “quotes” {json} " * 50,
        }
    )
    version = registry.register(NAME, folder, card)
    described = moto.client("sagemaker").describe_model_package(
        ModelPackageName=version.extra["model_package_arn"]
    )
    properties = described["CustomerMetadataProperties"]
    assert 1 < len(properties) <= MAX_METADATA_ENTRIES
    for key, value in properties.items():
        assert 1 <= len(key) <= 128 and METADATA_TEXT.match(key), key
        assert 1 <= len(value) <= 256 and METADATA_TEXT.match(value), (key, value)
    assert decode_card(properties, source="test") == card
    assert registry.resolve(ModelRef(NAME, None, 1)).card == card


def test_a_card_too_large_for_sagemaker_is_refused_before_anything_is_created(
    registry: SageMakerRegistry, moto: MotoServer, tmp_path: Path
) -> None:
    folder, card = artefact(tmp_path, "huge")
    noise = {f"lib{i}": f"{(i * 7919) % 104729:x}{i * 31337:o}{i}" for i in range(3000)}
    with pytest.raises(InputError, match="metadata"):
        registry.register(NAME, folder, card.model_copy(update={"libraries": noise}))
    sagemaker = moto.client("sagemaker")
    assert sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    assert moto.client("s3").list_objects_v2(Bucket=TEST_BUCKET).get("KeyCount") == 0


def test_a_card_that_does_not_survive_json_is_refused(tmp_path: Path) -> None:
    _, card = artefact(tmp_path, "nan")
    with pytest.raises(InputError, match="metrics"):
        encode_card(card.model_copy(update={"metrics": {"mae": math.nan}}))


def test_the_champion_is_the_approved_package(
    registry: SageMakerRegistry, moto: MotoServer, tmp_path: Path
) -> None:
    for label in ("a", "b", "c"):
        registry.register(NAME, *artefact(tmp_path, label))

    def statuses() -> list[str]:
        summaries = moto.client("sagemaker").list_model_packages(ModelPackageGroupName=NAME)
        return [s["ModelApprovalStatus"] for s in summaries["ModelPackageSummaryList"]]

    assert statuses() == ["PendingManualApproval"] * 3
    registry.promote(NAME, 1)
    registry.promote(NAME, 2)
    registry.promote(NAME, 3)
    assert statuses() == ["PendingManualApproval", "PendingManualApproval", "Approved"]
    assert registry.rollback(NAME).version == 2
    assert statuses() == ["PendingManualApproval", "Approved", "Rejected"]
    assert registry.rollback(NAME).version == 1  # the rollback history is a stack
    with pytest.raises(InputError):
        registry.rollback(NAME)
    # the cards outlive every status update (moto erases metadata an update does not resend)
    for version in registry.versions(NAME):
        assert version.card.artefact_sha256 == folder_digest(tmp_path / "abc"[version.version - 1])
    assert registry.resolve(ModelRef.parse(NAME)).aliases == (CHAMPION,)


def test_artefacts_live_at_prefix_name_version(
    registry: SageMakerRegistry, moto: MotoServer, tmp_path: Path
) -> None:
    folder, card = artefact(tmp_path, "a")
    version = registry.register(NAME, folder, card)
    key = f"{TEST_PREFIX}/{NAME}/1/model.tar.gz"
    assert version.location == f"s3://{TEST_BUCKET}/{key}"
    body = moto.client("s3").get_object(Bucket=TEST_BUCKET, Key=key)["Body"].read()
    assert body == pack_folder(folder)
    assert version.extra["image"] == TEST_IMAGE


def test_packing_is_deterministic(tmp_path: Path) -> None:
    folder, _ = artefact(tmp_path, "a")
    (folder / "sub").mkdir()
    (folder / "sub" / "w.bin").write_bytes(b"\x00" * 10)
    first = pack_folder(folder)
    (folder / "sub" / "w.bin").touch()  # a new mtime changes nothing
    assert pack_folder(folder) == first


def hostile_tarball(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    path.write_bytes(buffer.getvalue())
    return path


def _symlink() -> tarfile.TarInfo:
    info = tarfile.TarInfo("link")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return info


def _hardlink() -> tarfile.TarInfo:
    info = tarfile.TarInfo("hard")
    info.type, info.linkname = tarfile.LNKTYPE, "model.json"
    return info


def _device() -> tarfile.TarInfo:
    info = tarfile.TarInfo("dev")
    info.type = tarfile.CHRTYPE
    return info


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("../escape.txt"),
        tarfile.TarInfo("/abs/escape.txt"),
        tarfile.TarInfo("ok/../../escape.txt"),
        _symlink(),
        _hardlink(),
        _device(),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink", "hardlink", "device"],
)
def test_hostile_tarballs_are_refused(tmp_path: Path, member: tarfile.TarInfo) -> None:
    tarball = hostile_tarball(tmp_path / "bad.tar.gz", member, b"pwned")
    into = tmp_path / "deep" / "into"
    into.mkdir(parents=True)
    with pytest.raises(InputError, match=r"bad\.tar\.gz"):
        unpack_tarball(tarball, into, source=str(tarball))
    assert list(into.iterdir()) == []
    assert (
        not (tmp_path / "escape.txt").exists() and not (tmp_path / "deep" / "escape.txt").exists()
    )


def test_a_hostile_tarball_in_s3_is_refused_by_fetch(
    registry: SageMakerRegistry, moto: MotoServer, tmp_path: Path
) -> None:
    version = registry.register(NAME, *artefact(tmp_path, "a"))
    bad = hostile_tarball(tmp_path / "bad.tar.gz", _symlink())
    key = f"{TEST_PREFIX}/{NAME}/1/model.tar.gz"
    moto.client("s3").put_object(Bucket=TEST_BUCKET, Key=key, Body=bad.read_bytes())
    with pytest.raises(InputError, match="link"):
        registry.fetch(version, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_fetch_refuses_a_folder_with_files_and_a_missing_tarball(
    registry: SageMakerRegistry, moto: MotoServer, tmp_path: Path
) -> None:
    version = registry.register(NAME, *artefact(tmp_path, "a"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="empty folder"):
        registry.fetch(version, busy)
    assert (busy / "keep.txt").read_text() == "mine"
    moto.client("s3").delete_object(Bucket=TEST_BUCKET, Key=f"{TEST_PREFIX}/{NAME}/1/model.tar.gz")
    with pytest.raises(InputError, match="missing"):
        registry.fetch(version, tmp_path / "out")


def test_register_needs_an_image(moto: MotoServer, tmp_path: Path) -> None:
    moto.client("s3").create_bucket(Bucket=TEST_BUCKET)
    bare = SageMakerRegistry(TEST_BUCKET, TEST_PREFIX, client_factory=moto.client)
    with pytest.raises(InputError, match="image"):
        bare.register(NAME, *artefact(tmp_path, "a"))
    assert (
        moto.client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    )


def test_groups_of_other_registries_are_not_ours(
    registry: SageMakerRegistry, moto: MotoServer, tmp_path: Path
) -> None:
    moto.client("sagemaker").create_model_package_group(ModelPackageGroupName="someone-else")
    registry.register(NAME, *artefact(tmp_path, "a"))
    assert [v.ref for v in registry.versions()] == [f"{NAME}/1"]
    with pytest.raises(InputError, match="someone-else"):
        registry.register("someone-else", *artefact(tmp_path, "b"))
    other = SageMakerRegistry(
        TEST_BUCKET, "elsewhere", image=TEST_IMAGE, client_factory=moto.client
    )
    with pytest.raises(InputError, match=f"{TEST_BUCKET}/{TEST_PREFIX}"):
        other.resolve(ModelRef(NAME, None, 1))


class OnePerPage:
    """A SageMaker client whose list calls return one item per page."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._inner, name)
        if name not in ("list_model_packages", "list_model_package_groups"):
            return call
        return lambda **params: call(**params, MaxResults=1)


def test_listing_follows_every_page(moto: MotoServer, tmp_path: Path) -> None:
    moto.client("s3").create_bucket(Bucket=TEST_BUCKET)

    def factory(service: str) -> Any:
        client = moto.client(service)
        return OnePerPage(client) if service == "sagemaker" else client

    registry = SageMakerRegistry(TEST_BUCKET, TEST_PREFIX, image=TEST_IMAGE, client_factory=factory)
    for label in ("a", "b", "c"):
        registry.register(NAME, *artefact(tmp_path, label))
    registry.register("cost-rl-default", *artefact(tmp_path, "d"))
    assert [v.ref for v in registry.versions()] == [
        "cost-rl-default/1",
        f"{NAME}/1",
        f"{NAME}/2",
        f"{NAME}/3",
    ]


def test_registry_uri() -> None:
    registry = sagemaker_registry_from_uri(
        f"sagemaker://{TEST_BUCKET}/a/b?image={TEST_IMAGE}&region=eu-west-1",
        client_factory=lambda service: object(),
    )
    assert (registry.bucket, registry.prefix, registry.image) == (TEST_BUCKET, "a/b", TEST_IMAGE)
    default = sagemaker_registry_from_uri(f"sagemaker://{TEST_BUCKET}", client_factory=lambda s: 0)
    assert default.prefix == "opsbench/models" and default.image is None
    for bad in (
        "s3://bucket/prefix",
        "sagemaker:///prefix",
        "sagemaker://B_U/prefix",
        f"sagemaker://{TEST_BUCKET}/p?imgae=x",
        f"sagemaker://{TEST_BUCKET}/p?image=",
    ):
        with pytest.raises(InputError) as exc:
            sagemaker_registry_from_uri(bad, client_factory=lambda s: 0)
        assert "\n" not in str(exc.value)
