package journal

import (
	"errors"
	"io"
	"os"
)

// fileWindow serves byte ranges of a file from one reusable buffer so that scanning
// many small records costs one pread per buffer, not one per record. A window may be
// short (refilled) or, for a reader of the live segment, stale: bytes past the durable
// records change as records are written over the zeros kept ahead of them, and a sealed
// segment's zeros are cut at a roll. Readers read again before they report a bad record
// (see Reader.Next).
type fileWindow struct {
	f    *os.File
	size int64 // file size if known (recovery), -1 while the file may grow (readers)
	buf  []byte
	base int64 // file offset of buf[0]
	n    int   // valid bytes in buf
}

func newFileWindow(f *os.File, size int64, bufSize int) *fileWindow {
	return &fileWindow{f: f, size: size, buf: make([]byte, bufSize)}
}

// at returns the bytes from off onwards, at least need of them unless the file ends
// first. The slice is valid until the next call.
func (w *fileWindow) at(off int64, need int) ([]byte, error) {
	if w.size >= 0 && off+int64(need) > w.size {
		need = int(max(w.size-off, 0))
	}
	if off >= w.base && off+int64(need) <= w.base+int64(w.n) {
		return w.buf[off-w.base : w.n], nil
	}
	if need > len(w.buf) {
		w.buf = make([]byte, need)
	}
	want := len(w.buf)
	if w.size >= 0 {
		want = int(min(int64(want), max(w.size-off, 0)))
	}
	n, err := w.f.ReadAt(w.buf[:want], off)
	if err != nil && !errors.Is(err, io.EOF) {
		w.n = 0
		return nil, err
	}
	w.base, w.n = off, n
	return w.buf[:n], nil
}
