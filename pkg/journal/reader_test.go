package journal

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"
)

func TestReaderFromAnySeq(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{SegmentSize: 4096, NoSync: true})
	defer j.Close()
	const n = 2000
	appendRecords(t, j, n, 50, rand.New(rand.NewPCG(3, 4)))
	froms := []uint64{1, 2, n - 1, n, n + 1}
	// Segment boundaries and their neighbours.
	j.mu.Lock()
	for _, s := range j.segs[1:] {
		froms = append(froms, s.first-1, s.first, s.first+1)
	}
	j.mu.Unlock()
	rng := rand.New(rand.NewPCG(5, 6))
	for range 30 {
		froms = append(froms, 1+rng.Uint64N(n))
	}
	for _, from := range froms {
		verifyRange(t, j, from, n)
	}
}

func TestReaderAfterDeleteSegments(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{SegmentSize: 4096, NoSync: true})
	defer j.Close()
	appendRecords(t, j, 1000, 50, rand.New(rand.NewPCG(3, 4)))
	// No snapshot: nothing may be deleted.
	if k, err := j.DeleteSegmentsBefore(900); err != nil || k != 0 {
		t.Fatalf("DeleteSegmentsBefore without snapshot = %d, %v", k, err)
	}
	if err := j.SaveSnapshot(500, func(w io.Writer) error { _, err := w.Write([]byte("state")); return err }); err != nil {
		t.Fatal(err)
	}
	k, err := j.DeleteSegmentsBefore(900)
	if err != nil || k == 0 {
		t.Fatalf("DeleteSegmentsBefore = %d, %v", k, err)
	}
	first := j.FirstSeq()
	if first > 501 || first == 1 {
		t.Fatalf("FirstSeq after delete = %d: must keep every record after the snapshot at 500", first)
	}
	if _, err := j.NewReader(first - 1); !errors.Is(err, ErrCompacted) {
		t.Fatalf("NewReader(%d) = %v, want ErrCompacted", first-1, err)
	}
	verifyRange(t, j, first, 1000)
	verifyRange(t, j, 501, 1000)
	j.Close()
	j = openT(t, dir, Options{SegmentSize: 4096, NoSync: true})
	if rec := j.Recovery(); rec.FirstSeq != first || rec.LastSeq != 1000 {
		t.Fatalf("Recovery after delete = %+v", rec)
	}
}

// A subscriber following the tail sees only durable records and wakes on Sync.
func TestTailFollowingReader(t *testing.T) {
	j := openT(t, t.TempDir(), Options{NoSync: true})
	r, err := j.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan Record, 100)
	errc := make(chan error, 1)
	go func() {
		for {
			rec, err := r.NextWait(context.Background())
			if err != nil {
				errc <- err
				return
			}
			rec.Payload = append([]byte(nil), rec.Payload...)
			got <- rec
		}
	}()
	for round := range 3 {
		base := uint64(round * 10)
		for i := uint64(1); i <= 10; i++ {
			if _, err := j.Append(kindFor(base+i), tsFor(base+i), payloadFor(base+i)); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case rec := <-got:
			t.Fatalf("reader got seq %d before Sync (durable %d)", rec.Seq, j.DurableSeq())
		case <-time.After(20 * time.Millisecond):
		}
		if err := j.Sync(); err != nil {
			t.Fatal(err)
		}
		for i := uint64(1); i <= 10; i++ {
			select {
			case rec := <-got:
				expectRecord(t, rec, base+i)
			case <-time.After(5 * time.Second):
				t.Fatalf("reader did not wake for seq %d after Sync", base+i)
			}
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("NextWait after Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("NextWait did not return after Close")
	}
}

func TestNextWaitCancel(t *testing.T) {
	j := openT(t, t.TempDir(), Options{NoSync: true})
	defer j.Close()
	r, _ := j.NewReader(1)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.NextWait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NextWait = %v, want DeadlineExceeded", err)
	}
}

// Concurrent readers while the writer rolls segments with SyncAsync: every reader
// sees every record in order and never one beyond DurableSeq.
func TestConcurrentFollowers(t *testing.T) {
	j := openT(t, t.TempDir(), Options{SegmentSize: 16 << 10, NoSync: true})
	const n = 20000
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 3 {
		r, err := j.NewReader(1)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer r.Close()
			for want := uint64(1); want <= n; want++ {
				rec, err := r.NextWait(context.Background())
				if err != nil {
					errs <- err
					return
				}
				if d := j.DurableSeq(); rec.Seq > d {
					errs <- errors.New("record beyond DurableSeq")
					return
				}
				if rec.Seq != want || rec.Time != tsFor(want) || len(rec.Payload) != len(payloadFor(want)) {
					errs <- errors.New("wrong record")
					return
				}
			}
		})
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for j.NextSeq() <= n {
		for k := 1 + rng.IntN(200); k > 0 && j.NextSeq() <= n; k-- {
			s := j.NextSeq()
			j.Append(kindFor(s), tsFor(s), payloadFor(s))
		}
		if _, err := j.SyncAsync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	j.Close()
}

// Between write and fdatasync the records are in the file (and visible to any read)
// but not durable: a Reader must not return them yet.
func TestReaderIgnoresWrittenButUnsyncedRecords(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{})
	defer j.Close()
	appendRecords(t, j, 5, 5, rand.New(rand.NewPCG(1, 2)))
	r, _ := j.NewReader(1)
	defer r.Close()
	for s := uint64(1); s <= 5; s++ {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		expectRecord(t, rec, s)
	}
	inWindow, release := make(chan struct{}), make(chan struct{})
	testHookBeforeSync = func() {
		close(inWindow)
		<-release
	}
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer func() { testHookBeforeSync = nil }()
	defer unblock() // also on failure, so that Close does not wait forever
	for s := uint64(6); s <= 10; s++ {
		j.Append(kindFor(s), tsFor(s), payloadFor(s))
	}
	target, err := j.SyncAsync()
	if err != nil {
		t.Fatal(err)
	}
	<-inWindow
	if data, err := os.ReadFile(segFiles(t, dir)[0]); err != nil || !bytes.Contains(data, payloadFor(10)) {
		t.Fatalf("records not written yet (%v): the test would prove nothing", err)
	}
	if rec, err := r.Next(); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("Next during write..fdatasync = seq %d, %v; want ErrNoRecord", rec.Seq, err)
	}
	unblock()
	if _, err := j.WaitDurable(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	for s := uint64(6); s <= 10; s++ {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		expectRecord(t, rec, s)
	}
}
