package journal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	segMagic      = "BCXJ"
	segVersion    = 1
	segHeaderSize = 24
	segExt        = ".wal"

	recHeaderSize = 28
	// maxPayloadFormat bounds the length field so that a damaged length can never make
	// recovery allocate or read gigabytes; Options.MaxPayload limits writers further.
	maxPayloadFormat = 1 << 30

	nameDigits = 20
)

// castagnoli is hardware accelerated (SSE4.2 / ARMv8 CRC) in hash/crc32.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Kind is the caller's record type, stored with every record.
type Kind uint16

// Record is one journal entry as returned by a Reader. Payload aliases the reader's
// buffer and is valid only until the next call on that Reader.
type Record struct {
	Seq     uint64
	Kind    Kind
	Time    int64 // unix nanoseconds, as stamped by the writer's caller
	Payload []byte
}

// putRecordHeader fills b[4:28] for a record whose payload is already at
// b[28:28+n]; the checksum in b[0:4] is left to sumRecords.
func putRecordHeader(b []byte, seq uint64, kind Kind, ts int64, n int) {
	le := binary.LittleEndian
	le.PutUint32(b[4:], uint32(n))
	le.PutUint64(b[8:], seq)
	le.PutUint64(b[16:], uint64(ts))
	le.PutUint16(b[24:], uint16(kind))
	le.PutUint16(b[26:], 0)
}

// sumRecords writes the checksum of every record in b, a run of whole
// records. It runs as a batch is written, on the flusher, not as each
// record is appended: the writer goroutine is the sequencer's, and the
// checksum is a fifth of what appending costs it.
func sumRecords(b []byte) {
	le := binary.LittleEndian
	for len(b) > 0 {
		end := recHeaderSize + int(le.Uint32(b[4:]))
		le.PutUint32(b[0:], crc(b[4:end]))
		b = b[end:]
	}
}

// recHeader is a decoded record header; payload length has not been validated against
// the available bytes.
type recHeader struct {
	crc   uint32
	n     uint32
	seq   uint64
	ts    int64
	kind  Kind
	flags uint16
}

func decodeRecHeader(b []byte) recHeader {
	le := binary.LittleEndian
	return recHeader{
		crc:   le.Uint32(b[0:]),
		n:     le.Uint32(b[4:]),
		seq:   le.Uint64(b[8:]),
		ts:    int64(le.Uint64(b[16:])),
		kind:  Kind(le.Uint16(b[24:])),
		flags: le.Uint16(b[26:]),
	}
}

// checkRecord validates the framing and checksum of the record at the start of b (b may
// extend past it). It returns the decoded header and "" or the reason the bytes are not
// a record. Callers check the sequence number and flags of a record that passes: those
// are never torn writes.
func checkRecord(b []byte) (recHeader, string) {
	if len(b) < recHeaderSize {
		return recHeader{}, "incomplete record header"
	}
	h := decodeRecHeader(b)
	if h.n > maxPayloadFormat {
		return h, fmt.Sprintf("payload length %d out of range", h.n)
	}
	end := recHeaderSize + int(h.n)
	if end > len(b) {
		return h, "record runs past end of data"
	}
	if got := crc(b[4:end]); got != h.crc {
		return h, fmt.Sprintf("checksum mismatch (stored %08x, computed %08x)", h.crc, got)
	}
	return h, ""
}

func putSegHeader(b []byte, first uint64) {
	le := binary.LittleEndian
	copy(b[0:4], segMagic)
	le.PutUint32(b[4:], segVersion)
	le.PutUint64(b[8:], first)
	le.PutUint32(b[16:], crc(b[0:16]))
	le.PutUint32(b[20:], 0)
}

// checkSegHeader returns the first sequence number recorded in a segment header, or the
// reason the header is invalid.
func checkSegHeader(b []byte) (uint64, string) {
	if len(b) < segHeaderSize {
		return 0, "incomplete segment header"
	}
	le := binary.LittleEndian
	if string(b[0:4]) != segMagic {
		return 0, "bad segment magic"
	}
	if got, want := le.Uint32(b[16:]), crc(b[0:16]); got != want {
		return 0, "segment header checksum mismatch"
	}
	if v := le.Uint32(b[4:]); v != segVersion {
		return 0, fmt.Sprintf("unsupported segment version %d", v)
	}
	return le.Uint64(b[8:]), ""
}

func seqName(seq uint64, ext string) string {
	s := strconv.FormatUint(seq, 10)
	return strings.Repeat("0", nameDigits-len(s)) + s + ext
}

func segPath(dir string, first uint64) string { return filepath.Join(dir, seqName(first, segExt)) }

// parseSeqName parses "<20 digits><ext>".
func parseSeqName(name, ext string) (uint64, bool) {
	if len(name) != nameDigits+len(ext) || !strings.HasSuffix(name, ext) {
		return 0, false
	}
	v, err := strconv.ParseUint(name[:nameDigits], 10, 64)
	return v, err == nil
}
