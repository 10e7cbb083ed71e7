package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
)

const readerBufSize = 256 << 10

// Reader returns records in sequence order from a starting sequence number, never
// past DurableSeq. A Reader is for one goroutine; any number may run at once.
type Reader struct {
	j    *Journal
	next uint64 // next sequence number to return

	seg  segment // segment being read; seg.path == "" before the first
	f    *os.File
	w    *fileWindow
	off  int64  // offset of the record with sequence number scan
	scan uint64 // sequence number expected at off
	err  error  // sticky
}

// NewReader returns a Reader whose first record is from. from may be beyond
// DurableSeq: the Reader then waits for it. It fails with ErrCompacted if from is
// before the first retained record.
func (j *Journal) NewReader(from uint64) (*Reader, error) {
	if from == 0 {
		from = 1
	}
	if first := j.FirstSeq(); from < first {
		return nil, fmt.Errorf("%w: asked for %d, first retained is %d", ErrCompacted, from, first)
	}
	return &Reader{j: j, next: from}, nil
}

// Next returns the next record, or ErrNoRecord if it is not durable yet. The payload
// is valid until the next call.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	// Load DurableSeq before reading: every byte of records up to it was written before
	// it was published, so nothing read below can be a partial write.
	d := r.j.durable.Load()
	if r.next > d {
		return Record{}, ErrNoRecord
	}
	refilled := false
	for {
		if r.f == nil {
			if err := r.open(r.next); err != nil {
				return Record{}, r.setErr(err)
			}
		}
		b, err := r.w.at(r.off, recHeaderSize)
		if err != nil {
			return Record{}, r.setErr(err)
		}
		if len(b) == 0 {
			// End of this segment: record r.scan, which is durable, starts the next one.
			refilled = false
			s, ok := r.j.segmentFor(r.scan)
			if !ok || s.first != r.scan {
				return Record{}, r.setErr(r.corrupt(fmt.Sprintf("durable record %d missing: segment ends here", r.scan)))
			}
			if err := r.open(r.scan); err != nil {
				return Record{}, r.setErr(err)
			}
			continue
		}
		if len(b) >= recHeaderSize {
			h := decodeRecHeader(b)
			if h.n <= maxPayloadFormat {
				if b, err = r.w.at(r.off, recHeaderSize+int(h.n)); err != nil {
					return Record{}, r.setErr(err)
				}
			}
		}
		h, reason := checkRecord(b)
		if reason == "" && h.seq != r.scan {
			reason = fmt.Sprintf("record has seq %d", h.seq)
		}
		if reason == "" && h.flags != 0 {
			reason = fmt.Sprintf("record has unknown flags %#x", h.flags)
		}
		if reason != "" && !refilled {
			// The window may hold what the file had before this record was
			// written: the zeros kept ahead of the records (see zeroAhead),
			// or the end of a segment before it was cut at a roll. The
			// record is durable, so reading the file again finds it whole.
			refilled = true
			r.w.n = 0
			continue
		}
		if reason != "" {
			return Record{}, r.setErr(r.corrupt(reason))
		}
		refilled = false
		r.off += recHeaderSize + int64(h.n)
		r.scan++
		if h.seq < r.next {
			continue // positioning: skip to the first requested record
		}
		r.next++
		return Record{Seq: h.seq, Kind: h.kind, Time: h.ts, Payload: b[recHeaderSize : recHeaderSize+int(h.n)]}, nil
	}
}

// NextWait is Next that blocks until the next record is durable, ctx is done, or the
// journal is closed or failed.
func (r *Reader) NextWait(ctx context.Context) (Record, error) {
	for {
		rec, err := r.Next()
		if !errors.Is(err, ErrNoRecord) {
			return rec, err
		}
		if _, err := r.j.WaitDurable(ctx, r.next); err != nil {
			return Record{}, err
		}
	}
}

// NextSeq is the sequence number of the record the next call returns.
func (r *Reader) NextSeq() uint64 { return r.next }

// Close releases the open segment file.
func (r *Reader) Close() error {
	r.err = ErrClosed
	if r.f != nil {
		err := r.f.Close()
		r.f = nil
		return err
	}
	return nil
}

// open positions the reader at the start of the segment holding seq.
func (r *Reader) open(seq uint64) error {
	s, ok := r.j.segmentFor(seq)
	if !ok {
		return fmt.Errorf("%w: record %d", ErrCompacted, seq)
	}
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: record %d (segment %s deleted)", ErrCompacted, seq, s.path)
	}
	if err != nil {
		return err
	}
	if r.f != nil {
		r.f.Close()
	}
	r.f, r.seg = f, s
	if r.w == nil {
		r.w = newFileWindow(f, -1, readerBufSize)
	} else {
		r.w.f, r.w.base, r.w.n = f, 0, 0
	}
	hb, err := r.w.at(0, segHeaderSize)
	if err != nil {
		return err
	}
	first, reason := checkSegHeader(hb)
	if reason == "" && first != s.first {
		reason = fmt.Sprintf("segment header says first seq %d", first)
	}
	if reason != "" {
		return &CorruptionError{Path: s.path, Offset: 0, Seq: s.first, Reason: reason}
	}
	r.off, r.scan = segHeaderSize, s.first
	return nil
}

func (r *Reader) corrupt(reason string) error {
	return &CorruptionError{Path: r.seg.path, Offset: r.off, Seq: r.scan, Reason: reason}
}

// setErr keeps corruption sticky; other errors (e.g. ErrCompacted) are too, since the
// reader's position is lost either way.
func (r *Reader) setErr(err error) error {
	r.err = err
	return err
}
