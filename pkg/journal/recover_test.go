package journal

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// buildJournal writes n records into dir with small segments and returns the segment
// files.
func buildJournal(t *testing.T, dir string, n int, segSize int64) []string {
	t.Helper()
	j := openT(t, dir, Options{SegmentSize: segSize, NoSync: true})
	appendRecords(t, j, n, 10, rand.New(rand.NewPCG(7, uint64(n))))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return segFiles(t, dir)
}

func truncateFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// A crash can cut the last record anywhere: every cut must recover exactly the records
// before it, and the journal must be appendable afterwards.
func TestTornTailAtEveryOffset(t *testing.T) {
	src := t.TempDir()
	const n = 300
	files := buildJournal(t, src, n, 2048)
	if len(files) < 3 {
		t.Fatalf("want several segments, got %d", len(files))
	}
	lastFile := files[len(files)-1]
	offs := recordOffsets(t, lastFile)
	start, end := offs[len(offs)-1], fileSize(t, lastFile)
	if end-start < recHeaderSize+50 {
		// Make sure the last record has a real payload: pick n so that it does.
		t.Fatalf("last record is only %d bytes", end-start)
	}
	for cut := start; cut < end; cut++ {
		dir := copyDir(t, src)
		last := filepath.Join(dir, filepath.Base(lastFile))
		truncateFile(t, last, cut)
		j, err := Open(dir, Options{SegmentSize: 2048, NoSync: true})
		if err != nil {
			t.Fatalf("cut at %d: Open: %v", cut, err)
		}
		rec := j.Recovery()
		// A torn record's own trailing zeros count as zeros cut.
		if rec.LastSeq != n-1 || rec.TruncatedBytes+rec.ZerosCut != cut-start || (cut > start) != (rec.TruncatedPath == last) {
			t.Fatalf("cut at %d: Recovery = %+v, want LastSeq %d, %d bytes cut", cut, rec, n-1, cut-start)
		}
		if fileSize(t, last) != start {
			t.Fatalf("cut at %d: file is %d bytes, want %d", cut, fileSize(t, last), start)
		}
		verifyRange(t, j, 1, n-1)
		// Appending continues with the lost sequence number.
		if s, err := j.Append(kindFor(n), tsFor(n), payloadFor(n)); err != nil || s != n {
			t.Fatalf("Append after recovery = %d, %v", s, err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		j = openT(t, dir, Options{SegmentSize: 2048, NoSync: true})
		if rec := j.Recovery(); rec.LastSeq != n || rec.TruncatedBytes != 0 {
			t.Fatalf("cut at %d: reopen Recovery = %+v", cut, rec)
		}
		verifyRange(t, j, 1, n)
		j.Close()
	}
}

// A segment whose creation was cut before its header was complete is removed.
func TestTornSegmentHeader(t *testing.T) {
	src := t.TempDir()
	files := buildJournal(t, src, 200, 2048)
	lastFile := files[len(files)-1]
	firstOfLast, _ := parseSeqName(filepath.Base(lastFile), segExt)
	for cut := int64(0); cut <= segHeaderSize; cut++ {
		dir := copyDir(t, src)
		last := filepath.Join(dir, filepath.Base(lastFile))
		truncateFile(t, last, cut)
		j, err := Open(dir, Options{SegmentSize: 2048, NoSync: true})
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		rec := j.Recovery()
		if rec.LastSeq != firstOfLast-1 || (cut < segHeaderSize) != (rec.RemovedSegment == last) {
			t.Fatalf("cut at %d: Recovery = %+v", cut, rec)
		}
		verifyRange(t, j, 1, firstOfLast-1)
		appendRecords(t, j, 5, 5, rand.New(rand.NewPCG(1, 1)))
		verifyRange(t, j, 1, firstOfLast+4)
		j.Close()
	}
	// A fresh journal whose very first segment was torn.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, seqName(1, segExt)), []byte("BCX"), 0o644); err != nil {
		t.Fatal(err)
	}
	j := openT(t, dir, Options{NoSync: true})
	if j.NextSeq() != 1 || j.Recovery().RemovedSegment == "" {
		t.Fatalf("NextSeq %d, Recovery %+v", j.NextSeq(), j.Recovery())
	}
	j.Close()
}

func expectCorrupt(t *testing.T, dir string, opts Options, contains string) *CorruptionError {
	t.Helper()
	sizes := map[string]int64{}
	for _, f := range segFiles(t, dir) {
		sizes[f] = fileSize(t, f)
	}
	j, err := Open(dir, opts)
	if err == nil {
		j.Close()
		t.Fatalf("Open succeeded, want corruption (%s)", contains)
	}
	var ce *CorruptionError
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
		t.Fatalf("Open = %v, want a CorruptionError", err)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("Open = %v, want it to mention %q", err, contains)
	}
	// Corruption is reported, never repaired behind the operator's back.
	for f, sz := range sizes {
		if got := fileSize(t, f); got != sz {
			t.Fatalf("%s changed size from %d to %d on a failed Open", f, sz, got)
		}
	}
	return ce
}

func TestBitFlipInLastSegmentFollowedByValidRecordsIsCorruption(t *testing.T) {
	src := t.TempDir()
	files := buildJournal(t, src, 400, 1<<20) // one segment
	if len(files) != 1 {
		t.Fatalf("%d segments", len(files))
	}
	offs := recordOffsets(t, files[0])
	mid := offs[len(offs)/2]
	for name, off := range map[string]int64{
		"payload": mid + recHeaderSize + 1,
		"length":  mid + 5,
		"crc":     mid,
		"seq":     mid + 8,
	} {
		t.Run(name, func(t *testing.T) {
			dir := copyDir(t, src)
			path := filepath.Join(dir, filepath.Base(files[0]))
			flipBit(t, path, off, 3)
			ce := expectCorrupt(t, dir, Options{NoSync: true}, "not a torn tail")
			if ce.Offset != mid || ce.Seq != uint64(len(offs)/2+1) {
				t.Fatalf("error at offset %d seq %d, want %d seq %d", ce.Offset, ce.Seq, mid, len(offs)/2+1)
			}
			// The operator may choose to cut there.
			j, err := Open(dir, Options{NoSync: true, RepairTail: true})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			rec := j.Recovery()
			if rec.Repaired == nil || rec.LastSeq != uint64(len(offs)/2) || rec.TruncatedBytes+rec.ZerosCut != fileSize(t, src+"/"+filepath.Base(files[0]))-mid {
				t.Fatalf("RepairTail Recovery = %+v", rec)
			}
			verifyRange(t, j, 1, rec.LastSeq)
		})
	}
	// The same flip in the last record is a torn tail.
	t.Run("last record", func(t *testing.T) {
		dir := copyDir(t, src)
		path := filepath.Join(dir, filepath.Base(files[0]))
		flipBit(t, path, offs[len(offs)-1]+recHeaderSize+1, 0)
		j := openT(t, dir, Options{NoSync: true})
		defer j.Close()
		if rec := j.Recovery(); rec.LastSeq != 399 || !strings.Contains(rec.TruncateReason, "checksum") {
			t.Fatalf("Recovery = %+v", rec)
		}
	})
	// A torn record followed by zeros is reported as torn, up to the zeros.
	t.Run("torn record then zeros", func(t *testing.T) {
		dir := copyDir(t, src)
		path := filepath.Join(dir, filepath.Base(files[0]))
		lastOff := offs[len(offs)-1]
		truncateFile(t, path, lastOff+10) // a record cut 10 bytes in
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(make([]byte, 5000))
		f.Close()
		j := openT(t, dir, Options{NoSync: true})
		defer j.Close()
		rec := j.Recovery()
		// The 10 bytes kept of the record end with its non-zero header bytes.
		if rec.LastSeq != 399 || rec.TruncatedBytes == 0 || rec.TruncatedBytes > 10 || rec.TruncatedBytes+rec.ZerosCut != 5010 {
			t.Fatalf("Recovery = %+v", rec)
		}
	})
	// Zeros after the last good record (the journal writes them ahead of its
	// records, and some filesystems leave them after a crash) are cut without
	// being reported: nothing was lost.
	t.Run("zero tail", func(t *testing.T) {
		dir := copyDir(t, src)
		path := filepath.Join(dir, filepath.Base(files[0]))
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(make([]byte, 10000))
		f.Close()
		j := openT(t, dir, Options{NoSync: true})
		defer j.Close()
		if rec := j.Recovery(); rec.LastSeq != 400 || rec.TruncatedBytes != 0 || rec.ZerosCut != 10000 {
			t.Fatalf("Recovery = %+v", rec)
		}
		if got := fileSize(t, path); got != offs[len(offs)-1]+recHeaderSize+int64(len(payloadFor(400))) {
			t.Fatalf("file is %d bytes after recovery: the zeros were not cut", got)
		}
	})
}

func TestDamageInEarlierSegmentIsCorruption(t *testing.T) {
	src := t.TempDir()
	files := buildJournal(t, src, 300, 2048)
	first := filepath.Base(files[0])
	offs := recordOffsets(t, files[0])
	cases := map[string]func(path string){
		"flip in middle": func(p string) { flipBit(t, p, offs[len(offs)/2]+recHeaderSize, 7) },
		// The end of a sealed segment was synced before the next segment existed, so
		// damage there is not a torn tail even though nothing follows in that file.
		"flip in last record": func(p string) { flipBit(t, p, offs[len(offs)-1]+recHeaderSize, 7) },
		"cut last record":     func(p string) { truncateFile(t, p, offs[len(offs)-1]+10) },
		"header":              func(p string) { flipBit(t, p, 9, 0) },
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			dir := copyDir(t, src)
			damage(filepath.Join(dir, first))
			expectCorrupt(t, dir, Options{NoSync: true, RepairTail: true}, first)
		})
	}
}

func TestSequenceGapIsCorruption(t *testing.T) {
	src := t.TempDir()
	files := buildJournal(t, src, 300, 2048)
	t.Run("missing segment", func(t *testing.T) {
		dir := copyDir(t, src)
		os.Remove(filepath.Join(dir, filepath.Base(files[1])))
		expectCorrupt(t, dir, Options{NoSync: true}, "sequence gap")
	})
	t.Run("renamed segment", func(t *testing.T) {
		dir := copyDir(t, src)
		last := files[len(files)-1]
		first, _ := parseSeqName(filepath.Base(last), segExt)
		os.Rename(filepath.Join(dir, filepath.Base(last)), filepath.Join(dir, seqName(first+1, segExt)))
		expectCorrupt(t, dir, Options{NoSync: true}, "sequence gap")
	})
	t.Run("record skips a number at the tail", func(t *testing.T) {
		// A record with a valid checksum but the wrong sequence number is never a torn
		// write, even as the very last record.
		dir := copyDir(t, src)
		last := filepath.Join(dir, filepath.Base(files[len(files)-1]))
		rec := make([]byte, recHeaderSize+5)
		copy(rec[recHeaderSize:], "hello")
		putRecordHeader(rec, 302, 1, 1, 5)
		sumRecords(rec)
		f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(rec)
		f.Close()
		expectCorrupt(t, dir, Options{NoSync: true, RepairTail: true}, "record has seq 302")
	})
	t.Run("unknown flags at the tail", func(t *testing.T) {
		dir := copyDir(t, src)
		last := filepath.Join(dir, filepath.Base(files[len(files)-1]))
		rec := make([]byte, recHeaderSize)
		putRecordHeader(rec, 301, 1, 1, 0)
		rec[26] = 1
		binary.LittleEndian.PutUint32(rec, crc(rec[4:]))
		f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
		f.Write(rec)
		f.Close()
		expectCorrupt(t, dir, Options{NoSync: true, RepairTail: true}, "unknown flags")
	})
	t.Run("duplicate record", func(t *testing.T) {
		dir := copyDir(t, src)
		last := filepath.Join(dir, filepath.Base(files[len(files)-1]))
		b, _ := os.ReadFile(last)
		offs := recordOffsets(t, last)
		dup := b[offs[len(offs)-1]:]
		f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
		f.Write(dup)
		f.Close()
		expectCorrupt(t, dir, Options{NoSync: true}, "gap or duplicate")
	})
}
