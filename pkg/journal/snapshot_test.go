package journal

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func snapPayload(seq uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seq, 99))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func saveSnap(t *testing.T, s *SnapshotStore, seq uint64, payload []byte) {
	t.Helper()
	err := s.Save(seq, func(w io.Writer) error {
		// Several writes, so the checksum is computed incrementally.
		for p := payload; len(p) > 0; {
			n := min(len(p), 70000)
			if _, err := w.Write(p[:n]); err != nil {
				return err
			}
			p = p[n:]
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Save(%d): %v", seq, err)
	}
}

func loadLatest(t *testing.T, s *SnapshotStore) (uint64, []byte, []SkippedSnapshot) {
	t.Helper()
	snap, skipped, err := s.LoadLatest()
	if err != nil {
		t.Fatalf("LoadLatest: %v (skipped %v)", err, skipped)
	}
	defer snap.Close()
	return snap.Seq, readAllSnapshot(t, snap), skipped
}

func TestSnapshotSaveLoadAndRetention(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSnapshotStore(dir, SnapshotOptions{Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LoadLatest(); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("LoadLatest on empty store = %v", err)
	}
	for _, seq := range []uint64{10, 20, 30} {
		saveSnap(t, s, seq, snapPayload(seq, 300000+int(seq)))
	}
	seq, got, skipped := loadLatest(t, s)
	if seq != 30 || !bytes.Equal(got, snapPayload(30, 300030)) || len(skipped) != 0 {
		t.Fatalf("LoadLatest = seq %d, %d bytes, skipped %v", seq, len(got), skipped)
	}
	if seqs, _ := s.Seqs(); len(seqs) != 2 || seqs[0] != 20 || seqs[1] != 30 {
		t.Fatalf("Seqs = %v, want [20 30] (Keep 2)", seqs)
	}
	// An empty snapshot is valid.
	saveSnap(t, s, 40, nil)
	if seq, got, _ := loadLatest(t, s); seq != 40 || len(got) != 0 {
		t.Fatalf("empty snapshot: seq %d, %d bytes", seq, len(got))
	}
	// A failing writer leaves nothing behind.
	wantErr := errors.New("boom")
	if err := s.Save(50, func(w io.Writer) error { w.Write([]byte("partial")); return wantErr }); !errors.Is(err, wantErr) {
		t.Fatalf("Save with failing writer = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("after failed save, dir holds %d files", len(entries))
	}
}

func TestCorruptNewestSnapshotFallsBack(t *testing.T) {
	damages := map[string]func(path string){
		"payload bit": func(p string) { flipBit(t, p, snapHeaderSize+1000, 2) },
		"header bit":  func(p string) { flipBit(t, p, 17, 0) },
		"truncated":   func(p string) { truncateFile(t, p, fileSize(t, p)-1) },
		"extended": func(p string) {
			f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte{0})
			f.Close()
		},
		"empty": func(p string) { truncateFile(t, p, 0) },
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := OpenSnapshotStore(dir, SnapshotOptions{Keep: 3, NoSync: true})
			saveSnap(t, s, 100, snapPayload(100, 5000))
			saveSnap(t, s, 200, snapPayload(200, 5000))
			damage(filepath.Join(dir, seqName(200, snapExt)))
			seq, got, skipped := loadLatest(t, s)
			if seq != 100 || !bytes.Equal(got, snapPayload(100, 5000)) {
				t.Fatalf("fell back to seq %d", seq)
			}
			if len(skipped) != 1 || skipped[0].Seq != 200 || skipped[0].Err == nil {
				t.Fatalf("skipped = %+v", skipped)
			}
			t.Logf("skipped reason: %v", skipped[0].Err)
			damage(filepath.Join(dir, seqName(100, snapExt)))
			if _, skipped, err := s.LoadLatest(); !errors.Is(err, ErrNoSnapshot) || len(skipped) != 2 {
				t.Fatalf("all damaged: err %v, skipped %v", err, skipped)
			}
		})
	}
}

// A crash after the temp file is written but before the rename must leave the previous
// snapshot as the latest, and the temp file must not be mistaken for a snapshot.
func TestCrashBeforeRenameKeepsOldSnapshot(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenSnapshotStore(dir, SnapshotOptions{Keep: 3})
	saveSnap(t, s, 100, snapPayload(100, 5000))

	// At the hook, copy the directory as it is on disk: that is what a machine crashing
	// at this point would find.
	crashed := t.TempDir()
	testHookBeforeRename = func(tmp string) error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(crashed, e.Name()), b, 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	defer func() { testHookBeforeRename = nil }()
	saveSnap(t, s, 200, snapPayload(200, 5000))

	tmps, _ := filepath.Glob(filepath.Join(crashed, snapTmpPattern))
	if len(tmps) != 1 {
		t.Fatalf("crash image holds %d temp files, want 1", len(tmps))
	}
	cs, err := OpenSnapshotStore(crashed, SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if seq, got, skipped := loadLatest(t, cs); seq != 100 || !bytes.Equal(got, snapPayload(100, 5000)) || len(skipped) != 0 {
		t.Fatalf("after crash: seq %d skipped %v", seq, skipped)
	}
	if tmps, _ := filepath.Glob(filepath.Join(crashed, snapTmpPattern)); len(tmps) != 0 {
		t.Fatalf("OpenSnapshotStore left temp files %v", tmps)
	}
	// The store that did not crash has the new one.
	if seq, _, _ := loadLatest(t, s); seq != 200 {
		t.Fatalf("latest = %d, want 200", seq)
	}
}

func TestJournalSnapshotMustBeDurable(t *testing.T) {
	j := openT(t, t.TempDir(), Options{NoSync: true})
	defer j.Close()
	appendRecords(t, j, 10, 10, rand.New(rand.NewPCG(1, 1)))
	j.Append(1, 1, nil) // seq 11, not synced
	err := j.SaveSnapshot(11, func(w io.Writer) error { return nil })
	if !errors.Is(err, ErrNotDurable) {
		t.Fatalf("SaveSnapshot beyond durable = %v, want ErrNotDurable", err)
	}
	if err := j.SaveSnapshot(10, func(w io.Writer) error { _, err := io.WriteString(w, "state at 10"); return err }); err != nil {
		t.Fatal(err)
	}
	snap, _, err := j.LoadLatestSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if b := readAllSnapshot(t, snap); snap.Seq != 10 || !strings.Contains(string(b), "state at 10") {
		t.Fatalf("snapshot %d %q", snap.Seq, b)
	}
}

// TestSnapshotSpreadWriteback saves with syncing on, so the snapshot goes
// through spreadWriter, in one write larger than several chunks and in
// small writes that straddle chunk boundaries, and reads it back whole.
func TestSnapshotSpreadWriteback(t *testing.T) {
	s, err := OpenSnapshotStore(t.TempDir(), SnapshotOptions{Keep: 3})
	if err != nil {
		t.Fatal(err)
	}
	big := snapPayload(1, 3*spreadChunk+12345)
	if err := s.Save(1, func(w io.Writer) error { _, err := w.Write(big); return err }); err != nil {
		t.Fatal(err)
	}
	small := snapPayload(2, 2*spreadChunk+777)
	saveSnap(t, s, 2, small)
	for seq, want := range map[uint64][]byte{1: big, 2: small} {
		snap, err := s.open(seq)
		if err != nil {
			t.Fatalf("snapshot %d: %v", seq, err)
		}
		if got := readAllSnapshot(t, snap); !bytes.Equal(got, want) {
			t.Fatalf("snapshot %d: read %d bytes, differing from the %d written", seq, len(got), len(want))
		}
		snap.Close()
	}
}
