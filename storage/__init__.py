"""The storage layer — mirrors src/backend/storage/ (file/fd.c, smgr/, sync/, page/).

Modules, bottom up:

- ``fd``: the one I/O layer; every open/read/write/sync/rename/unlink of a server file.
- ``relfilenode``: RelFileNode, fork numbers and relpath() (common/relpath.c).
- ``md`` and ``smgr``: relation forks as 1 GB segment files (smgr/md.c, smgr/smgr.c).
- ``sync``: the fsync request table the checkpointer drains (sync/sync.c).
- ``bufpage`` and ``checksum``: the page layout and data checksums (page/bufpage.c,
  include/storage/checksum_impl.h).
"""
