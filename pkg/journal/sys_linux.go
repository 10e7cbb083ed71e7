package journal

import (
	"os"
	"syscall"
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
