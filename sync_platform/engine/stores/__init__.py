"""Object stores holding export files, keyed by the `type` of an entry under `s3_configs`: a local
folder or an S3 bucket. A new store is a module with an ObjectStore subclass and its Config, plus
one `STORES.register` line here."""

from ...registry import Registry
from .base import ObjectStore, S3Access, StoreConfigModel, StoredObject, StoreError
from .local import LocalStore, LocalStoreConfig
from .s3 import S3Store, S3StoreConfig

# type -> store class; the kind is what Dagster shows on export assets.
STORES: Registry[type[ObjectStore]] = Registry("store type")
STORES.register("local", LocalStore, "a folder on this host's file system", kind="file")
STORES.register("s3", S3Store, "a bucket behind any S3-compatible endpoint")


def store_from_config(config: StoreConfigModel, bucket: str | None = None, name: str | None = None) -> ObjectStore:
    return STORES.get_value(config.type).from_config(config, bucket, name)


__all__ = ["STORES", "LocalStore", "LocalStoreConfig", "ObjectStore", "S3Access", "S3Store", "S3StoreConfig",
           "StoreConfigModel", "StoreError", "StoredObject", "store_from_config"]
