package bankstatement

import (
	"bytes"
	"fmt"
	"io"
	"unicode/utf8"
)

// DefaultMaxBytes bounds the input Parse accepts when Options.MaxBytes is
// zero. A day's statement of a busy settlement account (100,000 entries, as
// GenerateCamt053 writes them) is about 49 MiB of camt.053; anything much
// larger is more likely an attack or a mistake than a statement, and the
// parser holds the whole file in memory.
const DefaultMaxBytes = 64 << 20

// Options adjusts parsing. The zero value is the strict default.
type Options struct {
	// MaxBytes is the largest input accepted; 0 means DefaultMaxBytes.
	MaxBytes int64
	// AllowMT940Fragments accepts MT940 statements that lack mandatory
	// fields (:20:, :25:, :60a:, :62a:), such as the single-field snippets
	// in parser test suites. Field syntax and field order are still
	// enforced. A statement without both balances is "unchecked". Never set
	// this for an import: a statement without an account or balances cannot
	// be reconciled.
	AllowMT940Fragments bool
}

func (o Options) maxBytes() int64 {
	if o.MaxBytes > 0 {
		return o.MaxBytes
	}
	return DefaultMaxBytes
}

// Parse parses a statement file with the default options.
func Parse(data []byte) (*File, error) { return Options{}.Parse(data) }

// ParseReader reads and parses a statement file with the default options.
func ParseReader(r io.Reader) (*File, error) { return Options{}.ParseReader(r) }

// ParseReader reads at most MaxBytes (+1, to tell a file that is exactly at
// the limit from one that is over it) and parses what it read, so that an
// oversized upload is refused without being held in memory.
func (o Options) ParseReader(r io.Reader) (*File, error) {
	max := o.maxBytes()
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading statement: %w", err)
	}
	return o.Parse(data)
}

// Parse detects the format of data (camt XML or MT940) and parses it. Every
// statement in the result has its balance check filled in; an inconsistent
// statement is not an error here.
func (o Options) Parse(data []byte) (*File, error) {
	if max := o.maxBytes(); int64(len(data)) > max {
		return nil, &ParseError{Reason: fmt.Sprintf("input is larger than the %d-byte limit", max), Err: ErrTooLarge}
	}
	body := bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, &ParseError{Reason: "empty input", Err: ErrUnknownFormat}
	}
	var (
		f   *File
		err error
	)
	switch trimmed[0] {
	case '<':
		f, err = parseCamt(body)
	case ':', '{':
		if !utf8.Valid(body) {
			// German banks write MT940 in ISO 8859-1; ASCII files are valid
			// UTF-8 already. Decoding here keeps names and remittance text
			// readable and the JSON output valid.
			body = latin1ToUTF8(body)
		}
		f, err = parseMT940(body, o)
	default:
		return nil, &ParseError{Reason: "neither XML (camt.053/camt.054) nor SWIFT MT940: the file must start with '<' or with an MT940 field such as ':20:' or a '{1:' header", Err: ErrUnknownFormat}
	}
	if err != nil {
		return nil, err
	}
	for i := range f.Statements {
		f.Statements[i].Check = f.Statements[i].CheckBalance()
	}
	return f, nil
}

func latin1ToUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/8)
	for _, c := range b {
		out = utf8.AppendRune(out, rune(c))
	}
	return out
}
