"""The S3 client configuration shared by the resources that move bytes to and from S3."""


import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr


class BoundedS3Resource(S3Resource):
    """dagster-aws's ``S3Resource`` with bounded waits: botocore's ``connect_timeout`` and ``read_timeout``
    (its defaults are 60 s each) beside ``max_attempts`` (standard retry mode: exponential backoff with
    jitter between attempts). An unreachable endpoint then fails a request within about
    ``max_attempts`` x ``connect_timeout`` plus the backoff, instead of minutes, and the step's Dagster
    ``RetryPolicy`` takes over. The project's default client; an explicit ``S3Resource`` keeps botocore's timeouts.
    """

    connect_timeout: float = Field(default=5.0, description="seconds to wait for a TCP connection to the endpoint")
    read_timeout: float = Field(default=30.0, description="seconds to wait for the endpoint's next bytes on an open connection")

    def get_client(self):
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(profile_name=self.profile_name)
        config = Config(retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
                        connect_timeout=self.connect_timeout, read_timeout=self.read_timeout)
        client = session.client("s3", region_name=self.region_name, use_ssl=self.use_ssl, verify=self.verify,
                                endpoint_url=self.endpoint_url, aws_access_key_id=self.aws_access_key_id,
                                aws_secret_access_key=self.aws_secret_access_key, aws_session_token=self.aws_session_token,
                                config=config)
        if self.use_unsigned_session:
            from botocore.handlers import disable_signing

            client.meta.events.register("choose-signer.s3.*", disable_signing)
        return client


class S3ClientResource(dg.ConfigurableResource):
    """A resource that may reach S3 through the boto3 client of ``s3`` (dagster-aws ``S3Resource``:
    ``endpoint_url`` for MinIO; credentials from the standard AWS chain when unset). Left unset,
    the endpoint and region come from ``CUSTOMER_INTEL_S3_ENDPOINT_URL`` / ``CUSTOMER_INTEL_S3_REGION``
    when the client is first needed, with bounded timeouts (``BoundedS3Resource``).

    The client is created once per resource instance: a boto3 client costs tens of
    milliseconds to build, and a sensor tick or an ingestion step asks for it several times.
    """

    s3: S3Resource | None = Field(default=None, description="S3 client configuration; unset: from CUSTOMER_INTEL_S3_* and the AWS chain")
    _client: object = PrivateAttr(default=None)

    def s3_client(self):
        if self._client is None:
            self._client = self.s3_config().get_client()
        return self._client

    def s3_config(self) -> S3Resource:
        """``s3``, or the client configuration the environment gives now."""
        if self.s3 is not None:
            return self.s3
        from customer_intel.resources.settings import Settings

        settings = Settings.from_env()
        return BoundedS3Resource(endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
