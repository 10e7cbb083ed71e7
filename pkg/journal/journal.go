package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bcx-exchange/bcx/pkg/latency"
)

// Options configure a Journal. The zero value gives the defaults.
type Options struct {
	// SegmentSize is the size at which a new segment is started. Default 64 MiB.
	SegmentSize int64
	// MaxPayload bounds one record's payload. Default 16 MiB.
	MaxPayload int
	// FirstSeq is the sequence number of the first record of a new, empty journal.
	// Ignored when segments exist. Default 1; 0 is reserved for "nothing".
	FirstSeq uint64
	// BufferSize is the initial capacity of the batch buffer. Default 1 MiB; it grows to
	// the largest batch seen and is reused.
	BufferSize int
	// NoSync skips every fdatasync/fsync. Records are then NOT durable across a machine
	// crash (they survive a process crash through the page cache). Only for tests and
	// benchmarks that say so explicitly.
	NoSync bool
	// RepairTail makes Open cut the last segment at its first bad record even when valid
	// records follow it (which is otherwise reported as corruption). The records cut are
	// lost; Recovery reports what was done. For an operator's deliberate decision only.
	RepairTail bool
	// SnapshotDir holds snapshots. Default <dir>/snapshots.
	SnapshotDir string
	// KeepSnapshots is how many of the newest snapshots are kept. Default 3.
	KeepSnapshots int
}

func (o Options) withDefaults(dir string) Options {
	if o.SegmentSize <= 0 {
		o.SegmentSize = 64 << 20
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = 16 << 20
	}
	if o.MaxPayload > maxPayloadFormat {
		o.MaxPayload = maxPayloadFormat
	}
	if o.FirstSeq == 0 {
		o.FirstSeq = 1
	}
	if o.BufferSize <= 0 {
		o.BufferSize = 1 << 20
	}
	if o.SnapshotDir == "" {
		o.SnapshotDir = filepath.Join(dir, "snapshots")
	}
	if o.KeepSnapshots <= 0 {
		o.KeepSnapshots = 3
	}
	return o
}

// Stats are cumulative counters since Open.
type Stats struct {
	Records  uint64 // records written to segment files
	Bytes    uint64 // bytes written to segment files, headers included
	Commits  uint64 // batches written (Sync/SyncAsync calls that had records)
	Fsyncs   uint64 // fdatasync/fsync calls on segments and the directory
	Segments int    // segments currently on disk
	Durable  uint64 // DurableSeq
	// Syncs are the durations of each batch's final fdatasync (not the
	// syncs of a segment roll; none with NoSync).
	Syncs latency.Histogram
}

// Recovery describes what Open found and did.
type Recovery struct {
	Segments       int    // segments found with a valid header
	Records        uint64 // valid records scanned
	FirstSeq       uint64 // first retained record (NextSeq when empty)
	LastSeq        uint64 // last good record (FirstSeq-1 when empty)
	TruncatedBytes int64  // bytes of torn records cut from the end of the last segment
	TruncatedPath  string // segment that was cut
	TruncateReason string // what was wrong with the first cut record
	// ZerosCut is the run of zeros cut from the end of the last segment: those the
	// journal writes ahead of its records (see zeroAhead), or a write that never
	// reached the disk.
	ZerosCut int64
	// RemovedSegment is a last segment whose creation was torn (header incomplete or
	// invalid, nothing after it); it was removed and recreated.
	RemovedSegment string
	// Repaired is set when Options.RepairTail cut corruption that was not a torn tail.
	Repaired *CorruptionError
}

type segment struct {
	first uint64
	path  string
}

// roll marks where, inside a batch buffer, a new segment starts.
type roll struct {
	off   int
	first uint64
}

// batch is a group of encoded records written and synced together.
type batch struct {
	buf     []byte
	rolls   []roll
	last    uint64
	records int
}

func (b *batch) reset() {
	b.buf = b.buf[:0]
	b.rolls = b.rolls[:0]
	b.records = 0
}

// Journal is an open journal directory. Append, AppendFunc, Sync, SyncAsync, Flushed,
// InFlight, Abandon, NextSeq and Close belong to one writer goroutine. DurableSeq, WaitDurable, NewReader, Stats,
// SaveSnapshot and LoadLatestSnapshot may be called from any goroutine.
type Journal struct {
	dir      string
	opts     Options
	lock     *os.File
	snaps    *SnapshotStore
	recovery Recovery

	// Writer goroutine state.
	cur        *batch
	spare      *batch
	inflight   *batch
	next       uint64 // sequence number the next Append gets
	segLogical int64  // size the current segment will have once cur is written
	werr       error  // sticky: after a failed write or sync nothing more is accepted

	// Owned by whoever runs flush: Sync inline, or the flusher goroutine. Never both,
	// because Sync first waits for an in-flight SyncAsync.
	wf     *os.File
	wfSize int64
	// zeroedTo is the current segment's file size: past wfSize it holds
	// zeros (see zeroAhead).
	zeroedTo int64

	flushCh chan *batch
	doneCh  chan error
	// flushed gets a token as the batch in flight becomes durable (before
	// doneCh gets its result): the writer selects on it beside its own
	// input instead of blocking in SyncAsync.
	flushed chan struct{}

	durable atomic.Uint64
	nRec    atomic.Uint64
	nBytes  atomic.Uint64
	nCommit atomic.Uint64
	nFsync  atomic.Uint64
	syncs   latency.Recorder

	mu      sync.Mutex
	segs    []segment // ascending; readers look segments up here
	failErr error     // first write/sync error, or ErrClosed
	notify  chan struct{}
	waiters bool // someone holds notify; close it on the next durable advance
}

// Open opens or creates the journal in dir, recovering it as described in the package
// documentation. Only one process may have a directory open.
func Open(dir string, opts Options) (*Journal, error) {
	opts = opts.withDefaults(dir)
	if err := makeDir(dir, opts.NoSync); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("journal: lock %s: %w", dir, err)
	}
	j := &Journal{
		dir:    dir,
		opts:   opts,
		lock:   lock,
		cur:    &batch{buf: make([]byte, 0, opts.BufferSize)},
		notify: make(chan struct{}),
	}
	if err := j.recover(); err != nil {
		if j.wf != nil {
			j.wf.Close()
		}
		lock.Close()
		return nil, err
	}
	j.snaps, err = OpenSnapshotStore(opts.SnapshotDir, SnapshotOptions{Keep: opts.KeepSnapshots, NoSync: opts.NoSync})
	if err != nil {
		j.wf.Close()
		lock.Close()
		return nil, err
	}
	return j, nil
}

// Recovery reports what Open found and repaired.
func (j *Journal) Recovery() Recovery { return j.recovery }

// Dir returns the journal directory.
func (j *Journal) Dir() string { return j.dir }

// NextSeq is the sequence number the next Append will get. Writer goroutine only.
func (j *Journal) NextSeq() uint64 { return j.next }

// DurableSeq is the highest sequence number known to be on disk (0 if none).
func (j *Journal) DurableSeq() uint64 { return j.durable.Load() }

// FirstSeq is the sequence number of the first retained record.
func (j *Journal) FirstSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.segs[0].first
}

// Stats returns the counters.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	n := len(j.segs)
	j.mu.Unlock()
	return Stats{
		Records:  j.nRec.Load(),
		Bytes:    j.nBytes.Load(),
		Commits:  j.nCommit.Load(),
		Fsyncs:   j.nFsync.Load(),
		Segments: n,
		Durable:  j.durable.Load(),
		Syncs:    j.syncs.Snapshot(),
	}
}

// Append adds a record with a copy of payload to the current batch and returns its
// sequence number. Nothing is written until Sync or SyncAsync; in steady state Append
// makes no syscall and no allocation.
func (j *Journal) Append(kind Kind, ts int64, payload []byte) (uint64, error) {
	if j.werr != nil {
		return 0, j.werr
	}
	if len(payload) > j.opts.MaxPayload {
		return 0, ErrTooLarge
	}
	b := j.cur
	p := len(b.buf)
	b.buf = slices.Grow(b.buf, recHeaderSize+len(payload))
	b.buf = b.buf[:p+recHeaderSize+len(payload)]
	copy(b.buf[p+recHeaderSize:], payload)
	return j.seal(p, kind, ts, len(payload)), nil
}

// AppendFunc is Append for callers that encode in place: enc receives an empty slice
// with spare capacity and must return it with the payload appended (the
// strconv.AppendInt convention), so the payload is encoded straight into the batch
// buffer with no intermediate copy when it fits.
func (j *Journal) AppendFunc(kind Kind, ts int64, enc func(dst []byte) []byte) (uint64, error) {
	if j.werr != nil {
		return 0, j.werr
	}
	b := j.cur
	p := len(b.buf)
	b.buf = slices.Grow(b.buf, recHeaderSize+512)
	b.buf = b.buf[:p+recHeaderSize]
	dst := b.buf[p+recHeaderSize : p+recHeaderSize]
	out := enc(dst)
	n := len(out)
	if n > j.opts.MaxPayload {
		b.buf = b.buf[:p]
		return 0, ErrTooLarge
	}
	if n > 0 && (n > cap(dst) || &dst[:1][0] != &out[0]) {
		// enc outgrew the buffer and reallocated: copy its result back in.
		b.buf = append(b.buf, out...)
	} else {
		b.buf = b.buf[:p+recHeaderSize+n]
	}
	return j.seal(p, kind, ts, n), nil
}

// seal writes the header of the record at b.buf[p:] and decides its segment.
func (j *Journal) seal(p int, kind Kind, ts int64, n int) uint64 {
	b := j.cur
	seq := j.next
	putRecordHeader(b.buf[p:], seq, kind, ts, n)
	size := int64(recHeaderSize + n)
	if j.segLogical > segHeaderSize && j.segLogical+size > j.opts.SegmentSize {
		b.rolls = append(b.rolls, roll{off: p, first: seq})
		j.segLogical = segHeaderSize
	}
	j.segLogical += size
	j.next++
	b.last = seq
	b.records++
	return seq
}

// Sync writes every appended record and returns once they are durable: one write per
// segment touched and one fdatasync for the whole batch. It first waits for an
// in-flight SyncAsync. After an error the Journal accepts nothing more; reopen it.
func (j *Journal) Sync() error {
	if err := j.waitInflight(); err != nil {
		return err
	}
	if j.werr != nil {
		return j.werr
	}
	b := j.cur
	if b.records == 0 {
		return nil
	}
	err := j.flush(b)
	b.reset()
	if err != nil {
		j.fail(err)
		return err
	}
	return nil
}

// SyncAsync hands the current batch to a background goroutine that writes and syncs
// it, and returns the sequence number that will be durable when it is done; wait for
// it with WaitDurable. The writer can meanwhile append (and apply) the next batch: the
// pipeline is one batch deep, so SyncAsync first waits for the previous one (see
// Flushed to wait for it and for other input at once).
func (j *Journal) SyncAsync() (uint64, error) {
	if err := j.waitInflight(); err != nil {
		return 0, err
	}
	if j.werr != nil {
		return 0, j.werr
	}
	b := j.cur
	if b.records == 0 {
		return j.next - 1, nil
	}
	if j.flushCh == nil {
		j.flushCh = make(chan *batch)
		j.doneCh = make(chan error, 1)
		j.flushed = make(chan struct{}, 1)
		go j.flusher(j.flushCh, j.doneCh, j.flushed)
	}
	if j.spare == nil {
		j.spare = &batch{buf: make([]byte, 0, cap(b.buf))}
	}
	j.cur, j.spare = j.spare, nil
	j.inflight = b
	j.flushCh <- b
	return b.last, nil
}

func (j *Journal) flusher(in <-chan *batch, done chan<- error, flushed chan<- struct{}) {
	for b := range in {
		err := j.flush(b)
		select {
		case flushed <- struct{}{}:
		default:
		}
		done <- err
	}
}

// Flushed returns a channel that receives once the batch handed to
// SyncAsync has been written and synced (or has failed), so that a writer
// can wait for that and for its own input at once; nil (which never
// receives) when no batch is in flight. The next SyncAsync or Sync then
// returns without waiting and reports the outcome. Writer goroutine only.
func (j *Journal) Flushed() <-chan struct{} {
	if j.inflight == nil {
		return nil
	}
	return j.flushed
}

// Abandon fails the journal with err for a writer that stopped because of
// err: it waits for the batch in flight and returns that batch's outcome
// (nil: it is durable, or there was none), discards the records appended
// since, which are never written (Close does not sync them), and makes
// every later write return err. A writer that answered the discarded
// records' commands as failed thus never finds them durable after a
// restart. (A batch whose own write or sync failed is another matter: part
// of it may be on disk.) Writer goroutine only.
func (j *Journal) Abandon(err error) error {
	ierr := j.waitInflight()
	j.cur.reset()
	j.fail(err)
	return ierr
}

// InFlight reports whether a batch handed to SyncAsync is still being
// written, as far as the writer has collected. Writer goroutine only.
func (j *Journal) InFlight() bool { return j.inflight != nil }

func (j *Journal) waitInflight() error {
	b := j.inflight
	if b == nil {
		return nil
	}
	err := <-j.doneCh
	// The flusher sends the token before the result: drop it, or a later
	// Flushed would receive for a batch not yet written.
	select {
	case <-j.flushed:
	default:
	}
	j.inflight = nil
	b.reset()
	j.spare = b
	if err != nil {
		j.fail(err)
	}
	return err
}

// flush writes b, rolling segments at the points Append chose, syncs, and publishes
// the new durable sequence number.
func (j *Journal) flush(b *batch) error {
	err := j.flushBatch(b)
	if err != nil {
		// Tell waiters now: with SyncAsync the writer may not look for a while.
		j.publishFail(fmt.Errorf("journal: writer failed, reopen to recover: %w", err))
	}
	return err
}

func (j *Journal) flushBatch(b *batch) error {
	sumRecords(b.buf)
	start := 0
	for _, r := range b.rolls {
		if err := j.write(b.buf[start:r.off], false); err != nil {
			return err
		}
		if err := j.rollTo(r.first); err != nil {
			return err
		}
		start = r.off
	}
	if err := j.write(b.buf[start:], true); err != nil {
		return err
	}
	if testHookBeforeSync != nil {
		testHookBeforeSync()
	}
	t0 := time.Now()
	if err := j.syncFile(j.wf); err != nil {
		return err
	}
	if !j.opts.NoSync {
		j.syncs.Add(time.Since(t0))
	}
	j.nRec.Add(uint64(b.records))
	j.nBytes.Add(uint64(len(b.buf)))
	j.nCommit.Add(1)
	j.publish(b.last)
	return nil
}

// testHookBeforeSync lets tests hold a batch between write and fdatasync: the window in
// which records are in the file but not durable.
var testHookBeforeSync func()

// zeroAhead is how far past its records the current segment is kept
// written with zeros. An fdatasync that must also record a larger file
// size commits the file system's journal, and then waits for whatever
// else that commit holds (a snapshot's allocation, an unlink); syncing
// records written over zeros is a plain data flush, and the size grows
// once per zeroAhead instead of at every sync. Measured on the project's
// VM: BenchmarkSyncBesideSnapshot's fsync p50 0.21-0.29 ms against
// 0.43-0.49 ms appending; bench grpc at 30k streamed + 5k unary orders/s,
// fsync p50 0.26-0.33 ms against 0.36-0.43 ms. Zeros are written in
// small steps so that the sync that carries them is not much slower.
const zeroAhead = 1 << 20

// zeroAheadBatch bounds the batches that write zeros ahead: every byte
// then reaches the disk twice, which a large batch pays for in its sync
// (bench matching's 600 KB batches: fsync p50 4.2 ms against 2.6 ms,
// throughput down by a tenth), while the one size commit it saves is
// small beside its data.
const zeroAheadBatch = 64 << 10

var zeros [256 << 10]byte

// write writes p after the current segment's records, and then, if ahead
// (the segment stays current), zeros past them: not before a roll, which
// would cut them at once.
func (j *Journal) write(p []byte, ahead bool) error {
	if len(p) == 0 {
		return nil
	}
	end := j.wfSize + int64(len(p))
	n, err := j.wf.WriteAt(p, j.wfSize)
	j.wfSize += int64(n)
	if err != nil {
		return err
	}
	if ahead && end > j.zeroedTo && len(p) < zeroAheadBatch {
		// Not past the segment's size: its last zeros are cut when it rolls.
		to := min(end+zeroAhead, max(j.opts.SegmentSize, end))
		for off := end; off < to; {
			k, err := j.wf.WriteAt(zeros[:min(int64(len(zeros)), to-off)], off)
			if err != nil {
				// The zeros only save metadata commits: a disk too full
				// for them must not fail the records. Cut what was
				// written of them (were that to fail, recovery cuts
				// zeros too) and try again after the next batch.
				j.wf.Truncate(end)
				j.zeroedTo = end
				return nil
			}
			off += int64(k)
		}
		j.zeroedTo = to
	}
	return nil
}

// cutZeros truncates the current segment to its records.
func (j *Journal) cutZeros() error {
	if j.zeroedTo <= j.wfSize {
		return nil
	}
	if err := j.wf.Truncate(j.wfSize); err != nil {
		return err
	}
	j.zeroedTo = j.wfSize
	return nil
}

// rollTo seals the current segment (synced before the next one exists, so that only
// the last segment can ever have a torn tail) and starts a new one. A sealed segment
// ends with its last record: readers take its end for the start of the next.
func (j *Journal) rollTo(first uint64) error {
	if err := j.cutZeros(); err != nil {
		return err
	}
	if err := j.syncFile(j.wf); err != nil {
		return err
	}
	if err := j.wf.Close(); err != nil {
		return err
	}
	j.wf = nil
	return j.createSegment(first)
}

func (j *Journal) createSegment(first uint64) error {
	path := segPath(j.dir, first)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	var h [segHeaderSize]byte
	putSegHeader(h[:], first)
	if _, err := f.WriteAt(h[:], 0); err != nil {
		f.Close()
		return err
	}
	if err := j.syncFile(f); err != nil {
		f.Close()
		return err
	}
	if err := j.syncDir(); err != nil {
		f.Close()
		return err
	}
	j.wf, j.wfSize, j.zeroedTo = f, segHeaderSize, segHeaderSize
	j.mu.Lock()
	j.segs = append(j.segs, segment{first: first, path: path})
	j.mu.Unlock()
	return nil
}

func (j *Journal) syncFile(f *os.File) error {
	if j.opts.NoSync {
		return nil
	}
	j.nFsync.Add(1)
	return datasync(f)
}

func (j *Journal) syncDir() error {
	if j.opts.NoSync {
		return nil
	}
	j.nFsync.Add(1)
	return syncDir(j.dir)
}

// makeDir creates dir if needed and then syncs its parent, so that a new journal's
// directory entry is as durable as the first records acknowledged in it.
func makeDir(dir string, noSync bool) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if noSync {
		return nil
	}
	return syncDir(filepath.Dir(filepath.Clean(dir)))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (j *Journal) publish(seq uint64) {
	j.durable.Store(seq)
	j.mu.Lock()
	if j.waiters {
		close(j.notify)
		j.notify = make(chan struct{})
		j.waiters = false
	}
	j.mu.Unlock()
}

// fail makes err sticky: a failed fsync may have dropped dirty pages, so retrying could
// report durable data that is not on disk.
func (j *Journal) fail(err error) {
	if j.werr == nil {
		j.werr = fmt.Errorf("journal: writer failed, reopen to recover: %w", err)
	}
	j.publishFail(j.werr)
}

func (j *Journal) publishFail(err error) {
	j.mu.Lock()
	if j.failErr == nil {
		j.failErr = err
		close(j.notify)
	}
	j.mu.Unlock()
}

// WaitDurable blocks until DurableSeq() >= seq, ctx is done, or the journal fails or is
// closed. It returns the durable sequence number at that point.
func (j *Journal) WaitDurable(ctx context.Context, seq uint64) (uint64, error) {
	for {
		if d := j.durable.Load(); d >= seq {
			return d, nil
		}
		j.mu.Lock()
		d := j.durable.Load()
		if d >= seq {
			j.mu.Unlock()
			return d, nil
		}
		if j.failErr != nil {
			err := j.failErr
			j.mu.Unlock()
			return d, err
		}
		j.waiters = true
		ch := j.notify
		j.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return j.durable.Load(), ctx.Err()
		}
	}
}

// Close syncs what was appended, stops the background flusher and releases the
// directory. Readers may keep reading durable records; their waits end with ErrClosed.
func (j *Journal) Close() error {
	if errors.Is(j.werr, ErrClosed) {
		return ErrClosed
	}
	err := j.Sync()
	if err == nil && j.wf != nil {
		// A journal closed cleanly ends with its last record.
		if err = j.cutZeros(); err == nil {
			err = j.syncFile(j.wf)
		}
	}
	if j.flushCh != nil {
		close(j.flushCh)
		j.flushCh = nil
	}
	if j.wf != nil {
		if cerr := j.wf.Close(); err == nil {
			err = cerr
		}
		j.wf = nil
	}
	if cerr := j.lock.Close(); err == nil {
		err = cerr
	}
	j.werr = ErrClosed
	j.publishFail(ErrClosed)
	return err
}

// segmentFor returns the segment that holds seq (the last one starting at or before it).
func (j *Journal) segmentFor(seq uint64) (segment, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	i, found := slices.BinarySearchFunc(j.segs, seq, func(s segment, q uint64) int {
		switch {
		case s.first < q:
			return -1
		case s.first > q:
			return 1
		}
		return 0
	})
	if !found {
		i--
	}
	if i < 0 {
		return segment{}, false
	}
	return j.segs[i], true
}
