"""Object stores holding export files: a local folder or an S3 bucket."""

from .base import ObjectStore, StoreError
from .local import LocalStore
from .s3 import S3Store

__all__ = ["LocalStore", "ObjectStore", "S3Store", "StoreError"]
