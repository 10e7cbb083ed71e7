package journal

import (
	"os/signal"
	"syscall"
	"testing"
)

// TestZerosAheadDoNotFailRecords: a disk too full for the zeros written
// ahead of the records (here a file size limit) must not fail the batch
// whose records fit.
func TestZerosAheadDoNotFailRecords(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skip("no RLIMIT_FSIZE:", err)
	}
	signal.Ignore(syscall.SIGXFSZ) // the write fails with EFBIG instead
	defer signal.Reset(syscall.SIGXFSZ)
	dir := t.TempDir()
	j := openT(t, dir, Options{NoSync: true})
	lim := old
	lim.Cur = 64 << 10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skip("cannot lower RLIMIT_FSIZE:", err)
	}
	for s := uint64(1); s <= 10; s++ {
		j.Append(kindFor(s), tsFor(s), payloadFor(s))
	}
	err := j.Sync()
	syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
	if err != nil {
		t.Fatalf("Sync with no room for the zeros: %v", err)
	}
	if j.DurableSeq() != 10 {
		t.Fatalf("DurableSeq = %d, want 10", j.DurableSeq())
	}
	j.Close()
	j = openT(t, dir, Options{})
	defer j.Close()
	verifyRange(t, j, 1, 10)
}
