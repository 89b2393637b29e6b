"""The S3 client configuration shared by the resources that move bytes to and from S3."""

from typing import Optional

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr


class S3ClientResource(dg.ConfigurableResource):
    """A resource that may reach S3 through the boto3 client of ``s3`` (dagster-aws ``S3Resource``:
    ``endpoint_url`` for MinIO; credentials from the standard AWS chain when unset).

    The client is created once per resource instance: a boto3 client costs tens of
    milliseconds to build, and a sensor tick or an ingestion step asks for it several times.
    """

    s3: Optional[S3Resource] = None
    _client: object = PrivateAttr(default=None)

    def s3_client(self):
        if self._client is None:
            self._client = (self.s3 or S3Resource()).get_client()
        return self._client
