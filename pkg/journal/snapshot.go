package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

const (
	snapMagic      = "BCXSNAP\x00"
	snapVersion    = 1
	snapHeaderSize = 40
	snapExt        = ".snap"
	snapTmpPattern = "snap-*.tmp"
	snapBufSize    = 256 << 10
)

// SnapshotOptions configure a SnapshotStore.
type SnapshotOptions struct {
	Keep   int  // newest snapshots kept after each save; default 3
	NoSync bool // skip fsyncs: for tests and benchmarks only
}

// SnapshotStore keeps checksummed, atomically replaced snapshots in a directory. It is
// safe for concurrent use.
type SnapshotStore struct {
	dir  string
	opts SnapshotOptions
	mu   sync.Mutex
}

// Snapshot is a verified snapshot; read its payload through it and Close it.
type Snapshot struct {
	Seq  uint64 // last journal record the snapshot includes
	Size int64  // payload bytes
	Path string
	f    *os.File
	r    *bufio.Reader
}

func (s *Snapshot) Read(p []byte) (int, error) { return s.r.Read(p) }

// Close closes the snapshot file.
func (s *Snapshot) Close() error { return s.f.Close() }

// SkippedSnapshot is a snapshot LoadLatest passed over, and why.
type SkippedSnapshot struct {
	Path string
	Seq  uint64
	Err  error
}

// testHookBeforeRename lets tests stop Save between the synced temp file and the
// rename, which is where a crash must leave the previous snapshots intact.
var testHookBeforeRename func(tmp string) error

// OpenSnapshotStore opens (creating) dir and removes temp files left by a crash in the
// middle of a save.
func OpenSnapshotStore(dir string, opts SnapshotOptions) (*SnapshotStore, error) {
	if opts.Keep <= 0 {
		opts.Keep = 3
	}
	if err := makeDir(dir, opts.NoSync); err != nil {
		return nil, err
	}
	tmps, err := filepath.Glob(filepath.Join(dir, snapTmpPattern))
	if err != nil {
		return nil, err
	}
	for _, t := range tmps {
		if err := os.Remove(t); err != nil {
			return nil, err
		}
	}
	return &SnapshotStore{dir: dir, opts: opts}, nil
}

// Dir returns the snapshot directory.
func (s *SnapshotStore) Dir() string { return s.dir }

// Save writes a snapshot of the state after record seq. write streams the payload.
// The snapshot is visible only once complete and synced; then the oldest snapshots
// beyond Keep are deleted.
func (s *SnapshotStore) Save(seq uint64, write func(io.Writer) error) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.CreateTemp(s.dir, snapTmpPattern)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	var hdr [snapHeaderSize]byte
	if _, err := f.Write(hdr[:]); err != nil {
		return err
	}
	var out io.Writer = f
	if !s.opts.NoSync && spreadSnapshots {
		out = &spreadWriter{f: f, off: snapHeaderSize, prev: snapHeaderSize, from: snapHeaderSize}
	}
	bw := bufio.NewWriterSize(out, snapBufSize)
	cw := &crcWriter{w: bw}
	if err := write(cw); err != nil {
		return fmt.Errorf("journal: snapshot writer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	le := binary.LittleEndian
	copy(hdr[0:8], snapMagic)
	le.PutUint32(hdr[8:], snapVersion)
	le.PutUint64(hdr[16:], seq)
	le.PutUint64(hdr[24:], uint64(cw.n))
	le.PutUint32(hdr[32:], cw.crc)
	le.PutUint32(hdr[36:], crc(hdr[0:36]))
	if _, err := f.WriteAt(hdr[:], 0); err != nil {
		return err
	}
	if !s.opts.NoSync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if testHookBeforeRename != nil {
		if err := testHookBeforeRename(tmp); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, seqName(seq, snapExt))); err != nil {
		return err
	}
	if err := s.syncDir(); err != nil {
		return err
	}
	return s.prune()
}

func (s *SnapshotStore) syncDir() error {
	if s.opts.NoSync {
		return nil
	}
	return syncDir(s.dir)
}

// prune deletes all but the newest Keep snapshots.
func (s *SnapshotStore) prune() error {
	seqs, err := s.seqs()
	if err != nil || len(seqs) <= s.opts.Keep {
		return err
	}
	for _, q := range seqs[:len(seqs)-s.opts.Keep] {
		if err := os.Remove(filepath.Join(s.dir, seqName(q, snapExt))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return s.syncDir()
}

// Seqs lists the sequence numbers of the snapshot files present, ascending, without
// verifying them.
func (s *SnapshotStore) Seqs() ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seqs()
}

func (s *SnapshotStore) seqs() ([]uint64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range entries {
		if q, ok := parseSeqName(e.Name(), snapExt); ok && strings.HasSuffix(e.Name(), snapExt) {
			out = append(out, q)
		}
	}
	slices.Sort(out)
	return out, nil
}

// LoadLatest returns the newest snapshot whose header and payload checksums verify,
// with the newer ones it skipped and why. It returns ErrNoSnapshot if none verifies.
func (s *SnapshotStore) LoadLatest() (*Snapshot, []SkippedSnapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seqs, err := s.seqs()
	if err != nil {
		return nil, nil, err
	}
	var skipped []SkippedSnapshot
	for i := len(seqs) - 1; i >= 0; i-- {
		snap, err := s.open(seqs[i])
		if err == nil {
			return snap, skipped, nil
		}
		skipped = append(skipped, SkippedSnapshot{Path: filepath.Join(s.dir, seqName(seqs[i], snapExt)), Seq: seqs[i], Err: err})
	}
	return nil, skipped, ErrNoSnapshot
}

// oldestValid is the sequence number of the oldest snapshot that verifies.
func (s *SnapshotStore) oldestValid() (uint64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seqs, err := s.seqs()
	if err != nil {
		return 0, false, err
	}
	for _, q := range seqs {
		snap, err := s.open(q)
		if err == nil {
			snap.Close()
			return q, true, nil
		}
	}
	return 0, false, nil
}

// open verifies the whole snapshot before returning it, so a caller never restores
// from a payload that turns out to be damaged halfway through.
func (s *SnapshotStore) open(seq uint64) (_ *Snapshot, err error) {
	path := filepath.Join(s.dir, seqName(seq, snapExt))
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var hdr [snapHeaderSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return nil, fmt.Errorf("snapshot header: %w", err)
	}
	le := binary.LittleEndian
	switch {
	case string(hdr[0:8]) != snapMagic:
		return nil, errors.New("bad snapshot magic")
	case le.Uint32(hdr[36:]) != crc(hdr[0:36]):
		return nil, errors.New("snapshot header checksum mismatch")
	case le.Uint32(hdr[8:]) != snapVersion:
		return nil, fmt.Errorf("unsupported snapshot version %d", le.Uint32(hdr[8:]))
	case le.Uint64(hdr[16:]) != seq:
		return nil, fmt.Errorf("snapshot header says seq %d", le.Uint64(hdr[16:]))
	}
	size := int64(le.Uint64(hdr[24:]))
	if size < 0 || st.Size() != snapHeaderSize+size {
		return nil, fmt.Errorf("snapshot file is %d bytes, header says payload %d", st.Size(), size)
	}
	h := crc32.New(castagnoli)
	buf := make([]byte, snapBufSize)
	if _, err := io.CopyBuffer(h, io.NewSectionReader(f, snapHeaderSize, size), buf); err != nil {
		return nil, err
	}
	if got, want := h.Sum32(), le.Uint32(hdr[32:]); got != want {
		return nil, fmt.Errorf("snapshot payload checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	return &Snapshot{
		Seq:  seq,
		Size: size,
		Path: path,
		f:    f,
		r:    bufio.NewReaderSize(io.NewSectionReader(f, snapHeaderSize, size), snapBufSize),
	}, nil
}

// spreadChunk is how much of a snapshot is written before it is pushed to
// the device. The journal's fdatasync waits behind whatever the device is
// writing: on the project's VM a 70 MB snapshot written back whole at its
// fsync held one journal sync for 140-150 ms; pushed 2 MiB at a time it
// holds many for a few ms each (p99 7-9 ms instead of 2-3 while snapshots
// are written) and none for more than about 50 ms
// (BenchmarkSyncBesideSnapshot). Orders wait behind a slow sync, so the
// long stall is the one that reaches the most of them.
const spreadChunk = 2 << 20

// spreadSnapshots is false only in the benchmark that compares both ways.
var spreadSnapshots = true

// spreadWriter writes a file sequentially, pushing each spreadChunk bytes
// to the device as it goes and waiting for the chunk before, so that at
// most two chunks are on their way at once.
type spreadWriter struct {
	f    *os.File
	off  int64 // end of what was written
	prev int64 // [prev, from) was pushed by the last writeback
	from int64 // [from, off) is not pushed yet
}

func (w *spreadWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		// A large write (the sequencer's encoding comes in two slices of
		// tens of MB) goes in chunks too.
		k := min(len(p), int(w.from+spreadChunk-w.off))
		n, err := w.f.Write(p[:k])
		written += n
		w.off += int64(n)
		if err != nil {
			return written, err
		}
		p = p[k:]
		if w.off-w.from >= spreadChunk {
			if err := writeback(w.f, w.prev, w.from, w.off); err != nil {
				return written, err
			}
			w.prev, w.from = w.from, w.off
		}
	}
	return written, nil
}

type crcWriter struct {
	w   io.Writer
	crc uint32
	n   int64
}

func (c *crcWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
	c.n += int64(n)
	return n, err
}

// SaveSnapshot saves a snapshot of the state after record seq, which must be durable:
// a snapshot ahead of the journal would, after a crash, hold commands the journal lost.
func (j *Journal) SaveSnapshot(seq uint64, write func(io.Writer) error) error {
	if d := j.DurableSeq(); seq > d {
		return fmt.Errorf("%w: seq %d, durable %d", ErrNotDurable, seq, d)
	}
	return j.snaps.Save(seq, write)
}

// LoadLatestSnapshot returns the newest valid snapshot; see SnapshotStore.LoadLatest.
func (j *Journal) LoadLatestSnapshot() (*Snapshot, []SkippedSnapshot, error) {
	return j.snaps.LoadLatest()
}

// Snapshots returns the journal's snapshot store.
func (j *Journal) Snapshots() *SnapshotStore { return j.snaps }

// DeleteSegmentsBefore deletes whole segments all of whose records are below seq, but
// never a record the oldest valid snapshot does not cover (so falling back to any
// retained snapshot can still replay), and never the active segment. It returns how
// many segments it deleted. Readers asking for deleted records get ErrCompacted.
func (j *Journal) DeleteSegmentsBefore(seq uint64) (int, error) {
	oldest, ok, err := j.snaps.oldestValid()
	if err != nil || !ok {
		return 0, err
	}
	limit := min(seq, oldest+1)
	j.mu.Lock()
	k := 0
	for k+1 < len(j.segs) && j.segs[k+1].first <= limit {
		k++
	}
	victims := slices.Clone(j.segs[:k])
	j.segs = slices.Delete(j.segs, 0, k)
	j.mu.Unlock()
	for _, v := range victims {
		if err := os.Remove(v.path); err != nil {
			return 0, err
		}
	}
	if k > 0 {
		if err := j.syncDir(); err != nil {
			return k, err
		}
	}
	return k, nil
}
