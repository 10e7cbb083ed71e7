package journal

import (
	"encoding/binary"
	"fmt"
	"os"
	"slices"
)

const scanBufSize = 1 << 20

// recover scans the directory, validates every segment, cuts a torn tail, and leaves
// j ready to append: j.segs, j.wf, j.wfSize, j.next, j.segLogical, j.durable set.
func (j *Journal) recover() error {
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return err
	}
	var segs []segment
	for _, e := range entries {
		name := e.Name()
		if len(name) < len(segExt) || name[len(name)-len(segExt):] != segExt {
			continue
		}
		first, ok := parseSeqName(name, segExt)
		if !ok || first == 0 {
			return &CorruptionError{Path: name, Offset: -1, Reason: "unexpected segment file name"}
		}
		segs = append(segs, segment{first: first, path: segPath(j.dir, first)})
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})

	rec := &j.recovery
	next := j.opts.FirstSeq
	fresh := len(segs) == 0
	var buf []byte
	for i, s := range segs {
		last := i == len(segs)-1
		if i > 0 && s.first != next {
			return &CorruptionError{Path: s.path, Offset: -1, Seq: next,
				Reason: fmt.Sprintf("sequence gap: previous segment ends at %d, this one is named %d", next-1, s.first)}
		}
		res, err := scanSegment(s, last, &buf)
		if err != nil {
			return err
		}
		if res.tornHeader {
			// Creation interrupted before the header was synced: nothing was ever written
			// after it, so removing the file loses no record.
			if err := os.Remove(s.path); err != nil {
				return err
			}
			if err := j.syncDir(); err != nil {
				return err
			}
			// Recreate it (below) rather than append to the previous, sealed segment.
			rec.RemovedSegment = s.path
			segs = segs[:i]
			next = s.first
			fresh = true
			break
		}
		rec.Segments++
		rec.Records += res.records
		if i == 0 {
			rec.FirstSeq = s.first
		}
		next = s.first + res.records
		if res.bad == nil {
			if last {
				j.wfSize = res.end
			}
			continue
		}
		if !last {
			return res.bad
		}
		if res.zerosFrom == res.end {
			// The zeros written ahead of the records (see zeroAhead), or a
			// write that never reached the disk: no record is in them.
			if err := j.truncate(s.path, res.end); err != nil {
				return err
			}
			rec.ZerosCut = res.size - res.end
			rec.TruncatedPath = s.path
			j.wfSize = res.end
			continue
		}
		if res.follow != "" {
			res.bad.Reason += "; " + res.follow
			if !j.opts.RepairTail {
				return res.bad
			}
			rec.Repaired = res.bad
		}
		if err := j.truncate(s.path, res.end); err != nil {
			return err
		}
		rec.TruncatedBytes = res.zerosFrom - res.end
		rec.ZerosCut = res.size - res.zerosFrom
		rec.TruncatedPath = s.path
		rec.TruncateReason = res.bad.Reason
		j.wfSize = res.end
	}

	j.next = next
	j.durable.Store(next - 1)
	j.segs = segs
	if len(segs) == 0 {
		rec.FirstSeq = next
	}
	if fresh {
		if err := j.createSegment(next); err != nil {
			return err
		}
	} else {
		s := segs[len(segs)-1]
		f, err := os.OpenFile(s.path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		j.wf = f
	}
	rec.LastSeq = next - 1
	j.segLogical = j.wfSize
	j.zeroedTo = j.wfSize
	return nil
}

func (j *Journal) truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = j.syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

type scanResult struct {
	records    uint64
	end        int64 // offset after the last good record
	size       int64
	bad        *CorruptionError // first bad record, if any
	follow     string           // for a bad record in the last segment: what valid data follows
	tornHeader bool             // last segment with a torn header and nothing after it
	zerosFrom  int64            // with bad in the last segment: where the zeros that end it begin (end: only zeros follow)
}

// scanSegment validates one segment. Sequence errors in records with a valid checksum
// are returned as errors directly: they are never a torn write.
func scanSegment(s segment, last bool, buf *[]byte) (scanResult, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return scanResult{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return scanResult{}, err
	}
	size := st.Size()
	if *buf == nil {
		*buf = make([]byte, scanBufSize)
	}
	w := &fileWindow{f: f, size: size, buf: *buf}
	defer func() { *buf = w.buf }()

	res := scanResult{size: size}
	hb, err := w.at(0, segHeaderSize)
	if err != nil {
		return res, err
	}
	first, reason := checkSegHeader(hb)
	if reason != "" {
		if last && size <= segHeaderSize {
			res.tornHeader = true
			return res, nil
		}
		return res, &CorruptionError{Path: s.path, Offset: 0, Seq: s.first, Reason: reason}
	}
	if first != s.first {
		return res, &CorruptionError{Path: s.path, Offset: 0, Seq: s.first,
			Reason: fmt.Sprintf("segment header says first seq %d", first)}
	}

	off, seq := int64(segHeaderSize), first
	for off < size {
		b, err := w.at(off, recHeaderSize)
		if err != nil {
			return res, err
		}
		if len(b) >= recHeaderSize {
			if n := int64(binary.LittleEndian.Uint32(b[4:])); off+recHeaderSize+n <= size {
				if b, err = w.at(off, int(recHeaderSize+n)); err != nil {
					return res, err
				}
			}
		}
		h, reason := checkRecord(b)
		if reason != "" {
			res.bad = &CorruptionError{Path: s.path, Offset: off, Seq: seq, Reason: reason}
			break
		}
		if h.seq != seq {
			return res, &CorruptionError{Path: s.path, Offset: off, Seq: seq,
				Reason: fmt.Sprintf("record has seq %d (valid checksum): gap or duplicate", h.seq)}
		}
		if h.flags != 0 {
			return res, &CorruptionError{Path: s.path, Offset: off, Seq: seq,
				Reason: fmt.Sprintf("record has unknown flags %#x (valid checksum): written by a newer version?", h.flags)}
		}
		seq++
		res.records++
		off += recHeaderSize + int64(h.n)
	}
	res.end = off
	if res.bad != nil && last {
		zf, err := trailingZeros(w, off)
		if err != nil {
			return res, err
		}
		res.zerosFrom = zf
		if zf == off {
			return res, nil // only zeros after the last good record
		}
		if fo, fseq, err := findValidRecord(w, off+1, seq); err != nil {
			return res, err
		} else if fo >= 0 {
			res.follow = fmt.Sprintf("valid record seq %d follows at offset %d, so this is not a torn tail", fseq, fo)
		}
	}
	return res, nil
}

// findValidRecord looks at every byte offset from start for a record with a valid
// checksum and a sequence number >= minSeq, returning its offset or -1. Such a record
// after a bad one means the bad one is not the torn end of the last write.
func findValidRecord(w *fileWindow, start int64, minSeq uint64) (int64, uint64, error) {
	le := binary.LittleEndian
	for o := start; o+recHeaderSize <= w.size; o++ {
		b, err := w.at(o, recHeaderSize)
		if err != nil {
			return -1, 0, err
		}
		// Cheap filters first: zero-filled or random tails fail these without a CRC.
		n := int64(le.Uint32(b[4:]))
		seq := le.Uint64(b[8:])
		if seq < minSeq || le.Uint16(b[26:]) != 0 || o+recHeaderSize+n > w.size {
			continue
		}
		if b, err = w.at(o, int(recHeaderSize+n)); err != nil {
			return -1, 0, err
		}
		if _, reason := checkRecord(b); reason == "" {
			return o, seq, nil
		}
	}
	return -1, 0, nil
}

// trailingZeros returns where the run of zero bytes that ends the file
// begins, looking from off on (the file's size if it ends otherwise).
func trailingZeros(w *fileWindow, off int64) (int64, error) {
	from := off
	for off < w.size {
		b, err := w.at(off, int(min(w.size-off, scanBufSize)))
		if err != nil {
			return 0, err
		}
		if len(b) == 0 {
			break
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != 0 {
				from = off + int64(i) + 1
				break
			}
		}
		off += int64(len(b))
	}
	return from, nil
}
