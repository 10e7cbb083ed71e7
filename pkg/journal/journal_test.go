package journal

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRoundTripAcrossRollovers(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	opts := Options{SegmentSize: 4096, NoSync: true}
	j := openT(t, dir, opts)
	appendRecords(t, j, 3000, 100, rng)
	// A record larger than a segment gets a segment of its own.
	big := bytes.Repeat([]byte("x"), 10000)
	bigSeq, err := j.Append(3, 5, big)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	// Continue with normal records: they must start a new segment after the big one.
	for range 20 {
		s := j.NextSeq()
		if _, err := j.Append(kindFor(s), tsFor(s), payloadFor(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	last := j.NextSeq() - 1
	if got := j.DurableSeq(); got != last {
		t.Fatalf("DurableSeq = %d, want %d", got, last)
	}
	files := segFiles(t, dir)
	if len(files) < 20 {
		t.Fatalf("only %d segments; rollover not exercised", len(files))
	}
	if st := j.Stats(); st.Segments != len(files) || st.Records != last || st.Fsyncs != 0 {
		t.Fatalf("Stats = %+v, want %d segments, %d records, 0 fsyncs (NoSync)", st, len(files), last)
	}
	for _, f := range files {
		offs := recordOffsets(t, f)
		if sz := fileSize(t, f); sz > opts.SegmentSize && len(offs) != 1 {
			t.Fatalf("%s is %d bytes with %d records; only a lone record may exceed the segment size", f, sz, len(offs))
		}
		first, _ := parseSeqName(filepath.Base(f), segExt)
		if first == bigSeq && len(offs) != 1 {
			t.Fatalf("big record shares its segment")
		}
	}
	check := func(j *Journal) {
		t.Helper()
		r, err := j.NewReader(1)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for s := uint64(1); s <= last; s++ {
			rec, err := r.Next()
			if err != nil {
				t.Fatalf("Next %d: %v", s, err)
			}
			if s == bigSeq {
				if !bytes.Equal(rec.Payload, big) || rec.Kind != 3 || rec.Time != 5 {
					t.Fatalf("big record mismatch")
				}
				continue
			}
			expectRecord(t, rec, s)
		}
		if _, err := r.Next(); !errors.Is(err, ErrNoRecord) {
			t.Fatalf("Next past end = %v, want ErrNoRecord", err)
		}
	}
	check(j)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen: everything is found, nothing cut, and appending continues.
	j = openT(t, dir, opts)
	rec := j.Recovery()
	if rec.LastSeq != last || rec.FirstSeq != 1 || rec.Records != last || rec.TruncatedBytes != 0 || rec.Segments != len(files) {
		t.Fatalf("Recovery = %+v", rec)
	}
	check(j)
	for range 50 {
		s := j.NextSeq()
		if _, err := j.Append(kindFor(s), tsFor(s), payloadFor(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openT(t, dir, opts)
	defer j.Close()
	if got := j.Recovery().LastSeq; got != last+50 {
		t.Fatalf("after Close without Sync, LastSeq = %d, want %d (Close syncs)", got, last+50)
	}
	verifyRange(t, j, last+1, last+50)
}

func TestSyncIsOneFsyncPerBatch(t *testing.T) {
	j := openT(t, t.TempDir(), Options{})
	defer j.Close()
	before := j.Stats()
	for b := range 5 {
		for range 100 {
			s := j.NextSeq()
			if _, err := j.Append(kindFor(s), tsFor(s), payloadFor(s)); err != nil {
				t.Fatal(err)
			}
		}
		if got := j.DurableSeq(); got != uint64(b*100) {
			t.Fatalf("DurableSeq before Sync = %d, want %d", got, b*100)
		}
		if err := j.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Sync(); err != nil { // nothing pending: no fsync
		t.Fatal(err)
	}
	st := j.Stats()
	if st.Fsyncs-before.Fsyncs != 5 || st.Commits != 5 || st.Records != 500 || st.Durable != 500 {
		t.Fatalf("Stats = %+v (before %+v), want 5 fsyncs, 5 commits, 500 records", st, before)
	}
	var n uint64
	for s := uint64(1); s <= 500; s++ {
		n += recHeaderSize + uint64(len(payloadFor(s)))
	}
	if st.Bytes != n {
		t.Fatalf("Bytes = %d, want %d", st.Bytes, n)
	}
}

func TestAppendFunc(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{NoSync: true, BufferSize: 64})
	huge := bytes.Repeat([]byte{0xAB}, 100000) // outgrows the buffer: enc reallocates
	var want [][]byte
	for i := range 50 {
		var p []byte
		if i%10 == 9 {
			p = huge
		} else {
			p = payloadFor(uint64(i + 1))
		}
		want = append(want, p)
		if _, err := j.AppendFunc(1, 2, func(dst []byte) []byte { return append(dst, p...) }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := j.AppendFunc(1, 2, func(dst []byte) []byte { return append(dst, make([]byte, 17<<20)...) }); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized AppendFunc = %v, want ErrTooLarge", err)
	}
	if _, err := j.Append(1, 2, make([]byte, 17<<20)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized Append = %v, want ErrTooLarge", err)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	r, err := j.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, w := range want {
		rec, err := r.Next()
		if err != nil || rec.Seq != uint64(i+1) || !bytes.Equal(rec.Payload, w) {
			t.Fatalf("record %d: seq %d err %v, payload equal %v", i+1, rec.Seq, err, bytes.Equal(rec.Payload, w))
		}
	}
	if _, err := r.Next(); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("want ErrNoRecord, got %v", err)
	}
	j.Close()
}

func TestAppendDoesNotAllocate(t *testing.T) {
	j := openT(t, t.TempDir(), Options{NoSync: true})
	defer j.Close()
	payload := make([]byte, 100)
	enc := func(dst []byte) []byte { return append(dst, payload...) }
	batch := func() {
		for range 256 {
			j.Append(1, 1, payload)
			j.AppendFunc(2, 2, enc)
		}
		if err := j.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	batch() // warm up: grow the buffer once
	if n := testing.AllocsPerRun(20, batch); n != 0 {
		t.Fatalf("%v allocations per batch of 512 appends + Sync, want 0", n)
	}
}

func TestSyncAsyncPipeline(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{SegmentSize: 8192})
	var last uint64
	for b := range 30 {
		for range 1 + b*7 {
			s := j.NextSeq()
			if _, err := j.Append(kindFor(s), tsFor(s), payloadFor(s)); err != nil {
				t.Fatal(err)
			}
		}
		target, err := j.SyncAsync()
		if err != nil {
			t.Fatal(err)
		}
		if target != j.NextSeq()-1 || target <= last {
			t.Fatalf("SyncAsync target %d, next %d, previous %d", target, j.NextSeq(), last)
		}
		last = target
	}
	if d, err := j.WaitDurable(t.Context(), last); err != nil || d != last {
		t.Fatalf("WaitDurable = %d, %v; want %d", d, err, last)
	}
	verifyRange(t, j, 1, last)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openT(t, dir, Options{SegmentSize: 8192})
	defer j.Close()
	if got := j.Recovery().LastSeq; got != last {
		t.Fatalf("LastSeq = %d, want %d", got, last)
	}
	verifyRange(t, j, 1, last)
}

func TestFirstSeqOption(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{FirstSeq: 1000, NoSync: true})
	if j.NextSeq() != 1000 || j.DurableSeq() != 999 || j.FirstSeq() != 1000 {
		t.Fatalf("NextSeq %d DurableSeq %d FirstSeq %d", j.NextSeq(), j.DurableSeq(), j.FirstSeq())
	}
	appendRecords(t, j, 10, 3, rand.New(rand.NewPCG(1, 1)))
	verifyRange(t, j, 1000, 1009)
	if _, err := j.NewReader(999); !errors.Is(err, ErrCompacted) {
		t.Fatalf("NewReader before first = %v, want ErrCompacted", err)
	}
	j.Close()
	if _, err := os.Stat(filepath.Join(dir, "00000000000000001000.wal")); err != nil {
		t.Fatal(err)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{NoSync: true})
	if _, err := Open(dir, Options{NoSync: true}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	j.Close()
	j = openT(t, dir, Options{NoSync: true})
	j.Close()
}

func TestClosedJournal(t *testing.T) {
	j := openT(t, t.TempDir(), Options{NoSync: true})
	j.Close()
	if _, err := j.Append(1, 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	if err := j.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close = %v", err)
	}
	if _, err := j.WaitDurable(t.Context(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitDurable after Close = %v", err)
	}
	if err := j.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
}

// TestFlushed checks the writer's signal that the batch in flight is
// durable: none with nothing in flight, none while the batch sits between
// write and fdatasync, one once it is durable, and no stale one after a
// Sync or SyncAsync collected the result itself.
func TestFlushed(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{})
	defer j.Close()
	if j.Flushed() != nil || j.InFlight() {
		t.Fatal("a fresh journal reports a batch in flight")
	}
	inWindow, release, done := make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	testHookBeforeSync = func() {
		select {
		case inWindow <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-done:
		}
	}
	defer func() { testHookBeforeSync = nil }()
	defer close(done) // also on failure, so that Close does not wait forever

	j.Append(kindFor(1), tsFor(1), payloadFor(1))
	last, err := j.SyncAsync()
	if err != nil || last != 1 {
		t.Fatalf("SyncAsync = %d, %v", last, err)
	}
	<-inWindow
	if !j.InFlight() {
		t.Fatal("InFlight false while the batch is being written")
	}
	select {
	case <-j.Flushed():
		t.Fatal("Flushed received before the fdatasync")
	case <-time.After(20 * time.Millisecond):
	}
	// The writer appends the next batch meanwhile.
	j.Append(kindFor(2), tsFor(2), payloadFor(2))
	release <- struct{}{}
	select {
	case <-j.Flushed():
	case <-time.After(10 * time.Second):
		t.Fatal("Flushed never received")
	}
	if got := j.DurableSeq(); got != 1 {
		t.Fatalf("DurableSeq after Flushed = %d, want 1", got)
	}
	// SyncAsync returns at once now and hands record 2.
	if last, err := j.SyncAsync(); err != nil || last != 2 {
		t.Fatalf("SyncAsync = %d, %v", last, err)
	}
	<-inWindow
	release <- struct{}{}
	// Sync collects that batch itself: its token must not survive for the
	// next batch.
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	if j.Flushed() != nil || j.InFlight() {
		t.Fatal("a batch in flight after Sync")
	}
	j.Append(kindFor(3), tsFor(3), payloadFor(3))
	if _, err := j.SyncAsync(); err != nil {
		t.Fatal(err)
	}
	<-inWindow
	select {
	case <-j.Flushed():
		t.Fatal("a stale Flushed token from the previous batch")
	case <-time.After(20 * time.Millisecond):
	}
	release <- struct{}{}
	<-j.Flushed()
	if err := j.Sync(); err != nil || j.DurableSeq() != 3 {
		t.Fatalf("Sync = %v, DurableSeq %d", err, j.DurableSeq())
	}
}

// TestAbandon checks that a writer that stops keeps what was durable and
// loses what was only appended, even through Close.
func TestAbandon(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{})
	j.Append(kindFor(1), tsFor(1), payloadFor(1))
	if _, err := j.SyncAsync(); err != nil {
		t.Fatal(err)
	}
	j.Append(kindFor(2), tsFor(2), payloadFor(2)) // appended, never synced
	stop := errors.New("writer stopped")
	if err := j.Abandon(stop); err != nil {
		t.Fatalf("Abandon = %v, want nil: the batch in flight is durable", err)
	}
	if j.DurableSeq() != 1 {
		t.Fatalf("DurableSeq = %d, want 1", j.DurableSeq())
	}
	if _, err := j.Append(kindFor(3), tsFor(3), payloadFor(3)); !errors.Is(err, stop) {
		t.Fatalf("Append after Abandon = %v, want %v", err, stop)
	}
	if err := j.Sync(); !errors.Is(err, stop) {
		t.Fatalf("Sync after Abandon = %v, want %v", err, stop)
	}
	j.Close()
	j = openT(t, dir, Options{})
	defer j.Close()
	if got := j.Recovery().LastSeq; got != 1 {
		t.Fatalf("after reopening, the journal ends at %d, want 1: an abandoned record was written", got)
	}
}
