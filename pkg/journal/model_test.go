package journal

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"pgregory.net/rapid"
)

// crash drops the journal as a killed process would: what was written stays (the page
// cache survives a process crash), what was only appended is lost.
func crash(j *Journal) {
	_ = j.waitInflight()
	if j.flushCh != nil {
		close(j.flushCh)
	}
	j.wf.Close()
	j.lock.Close()
	j.werr = ErrClosed
}

// TestModel runs random histories of appends, syncs, pipelined syncs, clean reopens
// and crashes against a model: after every reopen the journal holds exactly the
// records that were synced, and readers from random positions see exactly those.
func TestModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		dir, err := os.MkdirTemp("", "journal-model")
		if err != nil {
			rt.Fatal(err)
		}
		defer os.RemoveAll(dir)
		opts := Options{SegmentSize: int64(rapid.IntRange(200, 3000).Draw(rt, "segSize")), NoSync: true}
		j, err := Open(dir, opts)
		if err != nil {
			rt.Fatal(err)
		}
		var durable, appended uint64 // model
		check := func() {
			if got := j.DurableSeq(); got != durable {
				rt.Fatalf("DurableSeq = %d, model %d", got, durable)
			}
			if durable == 0 {
				return
			}
			from := rapid.Uint64Range(1, durable).Draw(rt, "from")
			r, err := j.NewReader(from)
			if err != nil {
				rt.Fatal(err)
			}
			defer r.Close()
			for s := from; s <= durable; s++ {
				rec, err := r.Next()
				if err != nil {
					rt.Fatalf("Next %d: %v", s, err)
				}
				if rec.Seq != s || rec.Time != tsFor(s) || rec.Kind != kindFor(s) || !bytes.Equal(rec.Payload, payloadFor(s)) {
					rt.Fatalf("record %d wrong", s)
				}
			}
			if _, err := r.Next(); !errors.Is(err, ErrNoRecord) {
				rt.Fatalf("past durable: %v", err)
			}
		}
		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for range steps {
			switch op := rapid.IntRange(0, 5).Draw(rt, "op"); op {
			case 0, 1: // append a few
				for k := rapid.IntRange(1, 30).Draw(rt, "n"); k > 0; k-- {
					s := j.NextSeq()
					if s != appended+1 {
						rt.Fatalf("NextSeq %d, model %d", s, appended+1)
					}
					if _, err := j.Append(kindFor(s), tsFor(s), payloadFor(s)); err != nil {
						rt.Fatal(err)
					}
					appended++
				}
			case 2:
				if err := j.Sync(); err != nil {
					rt.Fatal(err)
				}
				durable = appended
				check()
			case 3:
				target, err := j.SyncAsync()
				if err != nil {
					rt.Fatal(err)
				}
				if target != appended {
					rt.Fatalf("SyncAsync target %d, model %d", target, appended)
				}
				if _, err := j.WaitDurable(rt.Context(), target); err != nil {
					rt.Fatal(err)
				}
				durable = appended
				check()
			case 4: // clean close: Close syncs
				if err := j.Close(); err != nil {
					rt.Fatal(err)
				}
				durable = appended
				if j, err = Open(dir, opts); err != nil {
					rt.Fatal(err)
				}
				check()
			case 5: // crash: unsynced appends are lost
				crash(j)
				appended = durable
				if j, err = Open(dir, opts); err != nil {
					rt.Fatal(err)
				}
				if rec := j.Recovery(); rec.TruncatedBytes != 0 || rec.LastSeq != durable {
					rt.Fatalf("Recovery after crash = %+v, model durable %d", rec, durable)
				}
				check()
			}
		}
		j.Close()
	})
}

// FuzzRecoverLastSegment overwrites bytes of the last segment. Open must never panic,
// must either report corruption or recover a prefix, and must keep every record that
// lies wholly before the damage.
func FuzzRecoverLastSegment(f *testing.F) {
	src := f.TempDir()
	j, err := Open(src, Options{SegmentSize: 1 << 20, NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	for s := uint64(1); s <= 60; s++ {
		j.Append(kindFor(s), tsFor(s), payloadFor(s))
	}
	j.Close()
	seg := segFiles(f, src)[0]
	orig, err := os.ReadFile(seg)
	if err != nil {
		f.Fatal(err)
	}
	offs := recordOffsets(f, seg)
	f.Add(uint16(offs[30]+3), []byte{0xff})
	f.Add(uint16(offs[59]+10), []byte{})
	f.Add(uint16(len(orig)), make([]byte, 40))
	f.Add(uint16(offs[10]), orig[offs[11]:offs[13]])
	f.Add(uint16(5), []byte{1})
	f.Fuzz(func(t *testing.T, at uint16, data []byte) {
		off := min(int(at), len(orig))
		// data overwrites the file from off on (possibly extending it); no data is a cut.
		b := append(append([]byte(nil), orig[:off]...), data...)
		if len(data) > 0 && off+len(data) < len(orig) {
			b = append(b, orig[off+len(data):]...)
		}
		dir := t.TempDir()
		if err := os.WriteFile(dir+"/"+seqName(1, segExt), b, 0o644); err != nil {
			t.Fatal(err)
		}
		j, err := Open(dir, Options{NoSync: true})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want nil or corruption", err)
			}
			return
		}
		defer j.Close()
		intact := uint64(0) // records wholly before the damage
		for i := range offs {
			end := int64(len(orig))
			if i+1 < len(offs) {
				end = offs[i+1]
			}
			if end > int64(off) {
				break
			}
			intact++
		}
		if off < segHeaderSize {
			intact = 0
		}
		if j.DurableSeq() < intact {
			t.Fatalf("recovered %d records, but %d precede the damage at %d", j.DurableSeq(), intact, off)
		}
		r, _ := j.NewReader(1)
		defer r.Close()
		for s := uint64(1); s <= intact; s++ {
			rec, err := r.Next()
			if err != nil || rec.Seq != s || !bytes.Equal(rec.Payload, payloadFor(s)) {
				t.Fatalf("record %d: %v", s, err)
			}
		}
	})
}
