"""The S3 client configuration shared by the resources that move bytes to and from S3."""


import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr


class S3ClientResource(dg.ConfigurableResource):
    """A resource that may reach S3 through the boto3 client of ``s3`` (dagster-aws ``S3Resource``:
    ``endpoint_url`` for MinIO; credentials from the standard AWS chain when unset). Left unset,
    the endpoint and region come from ``CUSTOMER_INTEL_S3_ENDPOINT_URL`` / ``CUSTOMER_INTEL_S3_REGION``
    when the client is first needed.

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
        return S3Resource(endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
