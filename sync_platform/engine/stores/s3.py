from __future__ import annotations

import hashlib
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, SecretStr, model_validator

from .base import ObjectStore, S3Access, StoreConfigModel, StoredObject, StoreError

# boto3 error codes, translated into causes an operator can act on.
_CAUSES = {
    "NoSuchBucket": "bucket {bucket!r} does not exist",
    "InvalidAccessKeyId": "the access key id is not known to the endpoint (bad credentials)",
    "SignatureDoesNotMatch": "the secret access key is wrong (bad credentials)",
    "AccessDenied": "access denied to bucket {bucket!r} (no permission)",
    "403": "access denied to bucket {bucket!r} (bad credentials or no permission)",
    "404": "bucket {bucket!r} does not exist, or the key does not",
}


_MISSING = ("404", "NoSuchKey")
# 412: the condition failed; 409: a concurrent conditional write won; 404: If-Match on a deleted key.
_CONDITION_FAILED = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409", *_MISSING)

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def bucket_name_problem(bucket: str) -> str | None:
    """Why S3 would refuse the bucket name (None: it would not): 3 to 63 lowercase letters, digits,
    dots and hyphens, starting and ending with a letter or digit."""
    if _BUCKET_NAME.match(bucket) and ".." not in bucket:
        return None
    return (f"{bucket!r} is not a valid bucket name: use 3 to 63 lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit")


def _allowed_bucket(bucket: str) -> str:
    problem = bucket_name_problem(bucket)
    if problem:
        raise ValueError(problem)
    return bucket


# A bucket name, refused at validation when S3 would refuse it: the S3 config's and a task's override.
BucketName = Annotated[str, AfterValidator(_allowed_bucket)]


class S3StoreConfig(StoreConfigModel):
    """An S3 connection config of the spec: endpoint, region, default bucket, credentials."""

    type: Literal["s3"] = "s3"
    endpoint_url: str | None = None
    region: str = "us-east-1"
    bucket: BucketName
    prefix: str = ""
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    path_style: bool = True  # path-style addressing works with every S3-compatible endpoint

    @model_validator(mode="after")
    def _both_keys_or_none(self) -> S3StoreConfig:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither (to use the AWS default chain)")
        return self


def s3_client(config: S3StoreConfig):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=config.region,
        aws_access_key_id=config.access_key_id.get_secret_value() if config.access_key_id else None,
        aws_secret_access_key=config.secret_access_key.get_secret_value() if config.secret_access_key else None,
        config=Config(
            s3={"addressing_style": "path" if config.path_style else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
        ),
    )


class S3Store(ObjectStore):
    """A bucket (and key prefix) behind any S3 endpoint, used through a boto3 client."""

    Config = S3StoreConfig
    has_buckets = True

    @classmethod
    def from_config(cls, config: S3StoreConfig, bucket: str | None = None, name: str | None = None) -> S3Store:
        access = S3Access(
            endpoint_url=config.endpoint_url, region=config.region,
            access_key_id=config.access_key_id.get_secret_value() if config.access_key_id else None,
            secret_access_key=config.secret_access_key.get_secret_value() if config.secret_access_key else None,
            path_style=config.path_style,
        )
        return cls(s3_client(config), bucket=bucket or config.bucket, prefix=config.prefix, name=name, access=access)

    def __init__(self, client, bucket: str, prefix: str = "", name: str | None = None,
                 access: S3Access | None = None):
        if not bucket:
            raise ValueError("an S3 store needs a bucket")
        self.name = name  # the S3 config's id, for messages
        self.client = client
        self.access = access  # for readers of the bucket other than `client` (stored_object)
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, fn, **kwargs):
        import botocore.exceptions

        if self.name:
            what = f"{what} (S3 config {self.name!r})"
        try:
            return fn(**kwargs)
        except botocore.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            cause = _CAUSES.get(code, f"{code}: {error.response.get('Error', {}).get('Message', '')}")
            raise StoreError(f"S3 {what} failed: {cause.format(bucket=self.bucket)}") from None
        except botocore.exceptions.EndpointConnectionError as error:
            raise StoreError(f"S3 {what} failed: endpoint unreachable ({error.kwargs.get('endpoint_url')})") from None
        except botocore.exceptions.NoCredentialsError:
            raise StoreError(f"S3 {what} failed: no credentials configured") from None
        except botocore.exceptions.ParamValidationError:  # e.g. a bucket name S3 does not allow
            cause = bucket_name_problem(self.bucket) or "the request was not valid"
            raise StoreError(f"S3 {what} failed: {cause}") from None

    def put(self, key: str, data: bytes) -> None:
        # A PUT is atomic in S3: the object appears whole or not at all.
        self._call(
            f"upload of {self.url(key)}", self.client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data
        )

    def get(self, key: str) -> bytes:
        response = self._call(
            f"download of {self.url(key)}", self.client.get_object, Bucket=self.bucket, Key=self._key(key)
        )
        return response["Body"].read()

    def _call_or_none(self, what: str, fn, codes: tuple[str, ...], **kwargs):
        """_call, but None when S3 answers with one of `codes` (no such key, a failed condition)."""
        import botocore.exceptions

        def attempt():
            try:
                return fn(**kwargs)
            except botocore.exceptions.ClientError as error:
                if error.response.get("Error", {}).get("Code") in codes:
                    return None
                raise

        return self._call(what, attempt)

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        response = self._call_or_none(f"download of {self.url(key)}", self.client.get_object, _MISSING,
                                      Bucket=self.bucket, Key=self._key(key))
        return None if response is None else (response["Body"].read(), response["ETag"])

    def put_if(self, key: str, data: bytes, version: str | None) -> str | None:
        condition = {"IfNoneMatch": "*"} if version is None else {"IfMatch": version}
        response = self._call_or_none(f"conditional upload of {self.url(key)}", self.client.put_object,
                                      _CONDITION_FAILED, Bucket=self.bucket, Key=self._key(key), Body=data, **condition)
        return None if response is None else response["ETag"]

    def stored_object(self, key: str) -> StoredObject:
        def read() -> StoredObject:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            digest, size = hashlib.sha256(), 0
            for chunk in response["Body"].iter_chunks(1 << 20):
                digest.update(chunk)
                size += len(chunk)
            # The response's ETag is the version of the bytes hashed (S3 reads are consistent).
            return StoredObject(location=self.url(key), version=response["ETag"], sha256=digest.hexdigest(),
                                bytes=size, s3=self.access)

        return self._call(f"download of {self.url(key)}", read)

    def version(self, key: str) -> str | None:
        response = self._call_or_none(f"lookup of {self.url(key)}", self.client.head_object, _MISSING,
                                      Bucket=self.bucket, Key=self._key(key))
        return None if response is None else response["ETag"]

    def exists(self, key: str) -> bool:
        return self._call_or_none(f"lookup of {self.url(key)}", self.client.head_object, _MISSING,
                                  Bucket=self.bucket, Key=self._key(key)) is not None

    def list(self, prefix: str) -> list[str]:
        return sorted(self.sizes(prefix))

    def sizes(self, prefix: str) -> dict[str, int]:
        full = self._key(prefix.rstrip("/") + "/")
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call(f"listing of {self.url(prefix)}",
                           lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=full)))
        strip = len(self.prefix) + 1 if self.prefix else 0
        return {obj["Key"][strip:]: obj["Size"] for page in pages for obj in page.get("Contents", [])}

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # S3's limit per DeleteObjects call
            chunk = [{"Key": self._key(k)} for k in keys[start : start + 1000]]
            response = self._call(
                "delete", self.client.delete_objects, Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True}
            )
            errors = response.get("Errors") or []  # per-key failures come back in a 200 response
            if errors:
                first = errors[0]
                cause = _CAUSES.get(first.get("Code", ""), f"{first.get('Code')}: {first.get('Message', '')}")
                raise StoreError(
                    f"S3 delete of {len(errors)} object(s) failed, e.g. s3://{self.bucket}/{first.get('Key')}: "
                    + cause.format(bucket=self.bucket)
                )

    def check(self) -> None:
        self._call(f"access to bucket {self.bucket!r}", self.client.head_bucket, Bucket=self.bucket)

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"
