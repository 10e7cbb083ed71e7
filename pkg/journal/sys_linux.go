package journal

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// datasync flushes file data and the metadata needed to read it back (the size), but not
// timestamps: cheaper than fsync for an append-only log.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

// writeback starts writing [from, to) of f to the device and waits until
// [prev, from), started by the previous call, is written: a large file
// then reaches the device a chunk at a time instead of all at its fsync
// (see spreadWriter). It makes nothing durable by itself.
func writeback(f *os.File, prev, from, to int64) error {
	fd := int(f.Fd())
	if err := unix.SyncFileRange(fd, from, to-from, unix.SYNC_FILE_RANGE_WRITE); err != nil {
		return &os.PathError{Op: "sync_file_range", Path: f.Name(), Err: err}
	}
	if from > prev {
		const wait = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
		if err := unix.SyncFileRange(fd, prev, from-prev, wait); err != nil {
			return &os.PathError{Op: "sync_file_range", Path: f.Name(), Err: err}
		}
	}
	return nil
}
