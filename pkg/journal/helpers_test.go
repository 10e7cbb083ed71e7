package journal

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// Records in tests are a pure function of their sequence number, so any reader can
// check any record without remembering what was written.
func payloadFor(seq uint64) []byte {
	p := make([]byte, int(seq*7919%181))
	x := seq*0x9E3779B97F4A7C15 | 1
	for i := range p {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p[i] = byte(x)
	}
	return p
}

func kindFor(seq uint64) Kind { return Kind(seq % 7) }
func tsFor(seq uint64) int64  { return int64(seq)*1000 + 17 }

func openT(t testing.TB, dir string, opts Options) *Journal {
	t.Helper()
	j, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return j
}

// appendRecords appends n records in synced batches of 1..maxBatch records.
func appendRecords(t testing.TB, j *Journal, n, maxBatch int, rng *rand.Rand) {
	t.Helper()
	for i := 0; i < n; {
		k := 1 + rng.IntN(maxBatch)
		for ; k > 0 && i < n; k-- {
			want := j.NextSeq()
			seq, err := j.Append(kindFor(want), tsFor(want), payloadFor(want))
			if err != nil || seq != want {
				t.Fatalf("Append = %d, %v; want seq %d", seq, err, want)
			}
			i++
		}
		if err := j.Sync(); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	}
}

func expectRecord(t testing.TB, r Record, seq uint64) {
	t.Helper()
	if r.Seq != seq || r.Kind != kindFor(seq) || r.Time != tsFor(seq) || !bytes.Equal(r.Payload, payloadFor(seq)) {
		t.Fatalf("record %d: got seq=%d kind=%d time=%d payload %d bytes, want kind=%d time=%d payload %d bytes",
			seq, r.Seq, r.Kind, r.Time, len(r.Payload), kindFor(seq), tsFor(seq), len(payloadFor(seq)))
	}
}

// verifyRange reads from `from` to the end and checks it is exactly from..to.
func verifyRange(t testing.TB, j *Journal, from, to uint64) {
	t.Helper()
	r, err := j.NewReader(from)
	if err != nil {
		t.Fatalf("NewReader(%d): %v", from, err)
	}
	defer r.Close()
	want := from
	for {
		rec, err := r.Next()
		if errors.Is(err, ErrNoRecord) {
			break
		}
		if err != nil {
			t.Fatalf("Next at %d: %v", want, err)
		}
		expectRecord(t, rec, want)
		want++
	}
	if want != to+1 {
		t.Fatalf("read records %d..%d, want %d..%d", from, want-1, from, to)
	}
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segExt))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// copyDir copies the segment files of a journal into a fresh directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	for _, p := range segFiles(t, src) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func flipBit(t testing.TB, path string, off int64, bit uint) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1 << bit
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// recordOffsets returns the byte offset of every record in a segment file.
func recordOffsets(t testing.TB, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := int64(segHeaderSize); off < int64(len(b)); {
		if allZero(b[off:]) {
			break // the zeros kept ahead of the records of an open segment
		}
		h, reason := checkRecord(b[off:])
		if reason != "" {
			t.Fatalf("%s at %d: %s", path, off, reason)
		}
		offs = append(offs, off)
		off += recHeaderSize + int64(h.n)
	}
	return offs
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func readAllSnapshot(t testing.TB, s *Snapshot) []byte {
	t.Helper()
	b, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
