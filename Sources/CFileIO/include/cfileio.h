#ifndef LORS_CFILEIO_H
#define LORS_CFILEIO_H
#include <stdint.h>

/// Starts writing the dirty page-cache pages of `fd`'s bytes `offset ..< offset + length` to the disk without
/// waiting for them (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`; the later fsync then has less left to do).
/// Returns 0, or an errno value (ENOSYS where the call does not exist). A hint: data integrity still needs fsync.
int lors_start_writeback(int fd, int64_t offset, int64_t length);

#endif
