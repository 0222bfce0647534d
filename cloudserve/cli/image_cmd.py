"""``cloudserve image build|push``: the runtime image, built here, pushed where a target pulls.

A target serves an export with cloudserve's runtime image when no managed container fits it
(for example TF 2.21, which neither SageMaker's nor Vertex's prebuilt images serve). Clouds pull
only from their own registries, so ``push`` sends the image to the configured target's:

========  ===================================================================  ==================
target    repository                                                           credentials
========  ===================================================================  ==================
aws       ``<account>.dkr.ecr.<region>.amazonaws.com/cloudserve-runtime``        ECR token (boto3);
                                                                               repository created
gcp       ``<region>-docker.pkg.dev/<project>/cloudserve/cloudserve-runtime``   google-auth token
azure     ``<acr>.azurecr.io/cloudserve-runtime``                              ``--username`` /
                                                                               ``--password``
any       ``--registry HOST[:PORT][/PATH]`` + ``/cloudserve-runtime``           docker's own login
========  ===================================================================  ==================

and records the pushed digest (:mod:`cloudserve.runtime_images`), so deploys reference the image
as ``repository@sha256:...``. Docker is reached through the docker SDK (the ``docker`` extra):
the local engine, or ``DOCKER_HOST``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from cloudserve.cli.context import state

image_app = typer.Typer(
    help="Build cloudserve's runtime image and push it to a target's registry.",
    no_args_is_help=True,
)

Variant = Annotated[
    str,
    typer.Option(
        "--variant", help="cpu (tensorflow-cpu) or gpu (tensorflow and-cuda: CUDA wheels)."
    ),
]
TfVersion = Annotated[
    str | None,
    typer.Option(
        "--tf-version",
        help="TensorFlow inside the image: 2.21 (newest patch) or 2.21.0; match your export's. "
        "Default: the newest the runtime extra allows.",
        show_default=False,
    ),
]
Gcs = Annotated[
    bool | None,
    typer.Option(
        "--gcs/--no-gcs",
        help="Add google-cloud-storage (serves gs:// model URIs, as Vertex AI needs). "
        "Default: on for --target gcp.",
        show_default=False,
    ),
]


def _build_options(
    variant: str,
    tf_version: str | None,
    base_image: str | None,
    ca_certs: Path | None,
    network: str | None,
    gcs: bool,
) -> dict[str, Any]:
    from cloudserve.errors import ConfigError

    extra_ca = None
    if ca_certs is not None:
        try:
            extra_ca = ca_certs.read_text()
        except OSError as error:
            raise ConfigError(
                f"cannot read --ca-certs {ca_certs}: {error}", hint="give a PEM file"
            ) from error
    return {
        "variant": variant,
        "tf_version": tf_version,
        "base_image": base_image,
        "extra_ca_certs": extra_ca,
        "network_mode": network,
        "gcs": gcs,
    }


def _run_build(cli: Any, client: Any, tags: list[str], options: dict[str, Any]) -> Any:
    from cloudserve import runtime_images

    with cli.output.progress() as progress:
        return runtime_images.build(client, tags=tags, progress=progress.status, **options)


def _image_json(image: Any) -> dict[str, Any]:
    return {
        "id": image.id,
        "tags": list(image.tags),
        "size_bytes": image.size,
        "variant": image.variant,
        "tf_version": image.tf_version,
        "build_seconds": image.seconds,
    }


@image_app.command("build")
def build(
    ctx: typer.Context,
    variant: Variant = "cpu",
    tf_version: TfVersion = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag", help="Extra name:tag for the image (repeatable).", show_default=False
        ),
    ] = None,
    gcs: Gcs = None,
    base_image: Annotated[
        str | None,
        typer.Option(
            "--base-image",
            help="Base image (default python:3.11-slim; any with Python >= 3.11 or apt).",
            show_default=False,
        ),
    ] = None,
    ca_certs: Annotated[
        Path | None,
        typer.Option(
            "--ca-certs",
            help="PEM file of extra CA certificates the build trusts (TLS-intercepting proxy).",
            show_default=False,
        ),
    ] = None,
    network: Annotated[
        str | None,
        typer.Option(
            "--network", help="Network of the build's RUN steps (e.g. host).", show_default=False
        ),
    ] = None,
) -> None:
    """Build runtime_image/Dockerfile with the local Docker engine (or DOCKER_HOST).

    Streams the build's progress, then prints the image id and size. Finished layers are
    cached by the engine: a rebuild after a code change takes seconds. Run from a clone of the
    cloudserve repository (the build context). Example: cloudserve image build --tf-version 2.21
    """
    from cloudserve import runtime_images

    cli = state(ctx)
    options = _build_options(variant, tf_version, base_image, ca_certs, network, bool(gcs))
    image = _run_build(cli, runtime_images.docker_client(), list(tag or []), options)

    def text(out: Any) -> None:
        out.line(f"built {image.id}  {image.size / 1e9:.2f} GB  TF {image.tf_version}")
        out.line(f"tags: {', '.join(image.tags)}  ({image.seconds:g} s)")

    cli.output.result({"image": _image_json(image)}, text)


@image_app.command("push")
def push(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            "-t",
            help="Push to this target's registry (aws: ECR, gcp: Artifact Registry, azure: ACR).",
            show_default=False,
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            help="Push to this registry instead: HOST, HOST:PORT or HOST:PORT/PATH.",
            show_default=False,
        ),
    ] = None,
    variant: Variant = "cpu",
    tf_version: TfVersion = None,
    gcs: Gcs = None,
    build_first: Annotated[
        bool,
        typer.Option("--build/--no-build", help="Build (or reuse the cached build) first."),
    ] = True,
    username: Annotated[
        str | None,
        typer.Option(
            "--username",
            envvar="CLOUDSERVE_REGISTRY_USERNAME",
            show_default=False,
            help="Registry user (ACR, or a --registry needing login).",
        ),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            envvar="CLOUDSERVE_REGISTRY_PASSWORD",
            show_default=False,
            help="Registry password or token (prefer the environment variable).",
        ),
    ] = None,
    base_image: Annotated[str | None, typer.Option("--base-image", hidden=True)] = None,
    ca_certs: Annotated[Path | None, typer.Option("--ca-certs", hidden=True)] = None,
    network: Annotated[str | None, typer.Option("--network", hidden=True)] = None,
) -> None:
    """Push the runtime image to a target's registry and record its digest.

    Deploys then reference the image by digest. Idempotent: pushing an unchanged image uploads
    nothing.

    Examples: cloudserve image push --target aws --tf-version 2.21;
    cloudserve image push --registry 127.0.0.1:5000/team
    """
    from cloudserve import runtime_images
    from cloudserve.errors import ConfigError

    cli = state(ctx)
    if registry is None:
        target = target or cli.target
        if not target:
            raise ConfigError(
                "say where to push",
                hint="give --target aws, gcp or azure, or --registry HOST:PORT/PATH",
            )
    use_gcs = gcs if gcs is not None else target == "gcp" and registry is None
    client = runtime_images.docker_client()
    options = _build_options(variant, tf_version, base_image, ca_certs, network, use_gcs)
    if build_first:
        image = _run_build(cli, client, [], options)
        local, minor = image.id, image.tf_minor
    else:
        local, minor = _existing(client, variant, tf_version, use_gcs)
    where = _registry(cli, target, registry, username, password)
    repository = f"{where.prefix}/{runtime_images.REPOSITORY_NAME}"
    tag = f"tf{minor}-{variant}" + ("-gcs" if use_gcs else "")
    with cli.output.progress() as progress:
        digest = runtime_images.push(
            client, local, repository, tag=tag, auth_config=where.auth, progress=progress.status
        )
    pushed = runtime_images.record(repository, digest, variant=variant, tf_version=minor)
    data = {
        "reference": pushed.reference,
        "repository": repository,
        "tag": tag,
        "digest": digest,
        "variant": variant,
        "tf_version": minor,
    }
    cli.output.result(
        {"pushed": data},
        lambda out: out.line(f"pushed {repository}:{tag}\nreference: {pushed.reference}"),
    )


def _existing(client: Any, variant: str, tf_version: str | None, gcs: bool) -> tuple[str, str]:
    """The locally built image for --no-build: (id, TF major.minor)."""
    from cloudserve import runtime_images
    from cloudserve.errors import NotFound

    wanted = f"{runtime_images.REPOSITORY_NAME}:tf"
    suffix = f"-{variant}" + ("-gcs" if gcs else "")
    for image in client.images.list(name=runtime_images.REPOSITORY_NAME):
        for name in image.tags:
            if not (name.startswith(wanted) and name.endswith(suffix)):
                continue
            minor = name[len(wanted) : -len(suffix)]
            if tf_version is None or minor == ".".join(tf_version.split(".")[:2]):
                return image.id, minor
    raise NotFound(
        f"no local {variant} runtime image" + (f" with TF {tf_version}" if tf_version else ""),
        hint="build it: cloudserve image build"
        + (f" --tf-version {tf_version}" if tf_version else ""),
    )


class _Registry:
    def __init__(self, prefix: str, auth: dict[str, str] | None):
        self.prefix = prefix.rstrip("/")
        self.auth = auth


def _registry(
    cli: Any, target: str | None, registry: str | None, username: str | None, password: str | None
) -> _Registry:
    """Where to push and with which credentials."""
    from cloudserve import registry as targets
    from cloudserve.errors import ConfigError, NotSupported

    basic = {"username": username, "password": password} if username and password else None
    if registry is not None:
        return _Registry(registry.removeprefix("https://").removeprefix("http://"), basic)
    assert target is not None
    config = cli.settings(target=target).adapter_config(targets.load(target))
    if target == "aws":
        return _ecr(config.region)
    if target == "gcp":
        return _artifact_registry(config.region, config.project)
    if target == "azure":
        acr = getattr(config, "acr", None)
        if not acr:
            raise ConfigError(
                "targets.azure.acr is not set",
                hint="set it to your registry's name (<name>.azurecr.io)",
            )
        if basic is None:
            raise ConfigError(
                f"pushing to {acr}.azurecr.io needs credentials",
                hint="set CLOUDSERVE_REGISTRY_USERNAME/PASSWORD: an ACR token or the admin user "
                "(`az acr login --expose-token` prints a token for user "
                "00000000-0000-0000-0000-000000000000)",
            )
        return _Registry(f"{acr}.azurecr.io", basic)
    raise NotSupported(
        f"target '{target}' has no registry of its own",
        hint="push with --registry HOST:PORT/PATH (the registry its Docker hosts pull from)",
    )


def _ecr(region: str) -> _Registry:
    """ECR: a token from boto3 (``AWS_ENDPOINT_URL`` is honoured); the repository is created."""
    import base64

    from cloudserve import runtime_images
    from cloudserve.errors import CredentialsError, MissingDependency, ProviderError

    try:
        import boto3
        import botocore.exceptions
    except ImportError as error:
        raise MissingDependency("boto3", "aws") from error
    ecr = boto3.client("ecr", region_name=region)
    try:
        token = ecr.get_authorization_token()["authorizationData"][0]
        with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
            ecr.create_repository(repositoryName=runtime_images.REPOSITORY_NAME)
    except botocore.exceptions.NoCredentialsError as error:
        raise CredentialsError(
            str(error), hint="configure AWS credentials", provider="aws"
        ) from error
    except botocore.exceptions.ClientError as error:
        raise ProviderError(f"ECR: {error}", provider="aws") from error
    user, _, password = base64.b64decode(token["authorizationToken"]).decode().partition(":")
    host = token["proxyEndpoint"].removeprefix("https://").rstrip("/")
    return _Registry(host, {"username": user, "password": password, "serveraddress": host})


def _artifact_registry(region: str, project: str) -> _Registry:
    """Artifact Registry ``<region>-docker.pkg.dev/<project>/cloudserve``: a google-auth token.

    The ``cloudserve`` Docker repository must exist (``gcloud artifacts repositories create
    cloudserve --repository-format=docker --location=<region>``).
    """
    from cloudserve.errors import CredentialsError, MissingDependency

    try:
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests
    except ImportError as error:
        raise MissingDependency("google-auth", "gcp") from error
    try:
        credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
        credentials.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.GoogleAuthError as error:
        raise CredentialsError(
            str(error), hint="run `gcloud auth application-default login`", provider="gcp"
        ) from error
    host = f"{region}-docker.pkg.dev"
    return _Registry(
        f"{host}/{project}/cloudserve",
        {"username": "oauth2accesstoken", "password": credentials.token, "serveraddress": host},
    )
