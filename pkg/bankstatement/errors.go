package bankstatement

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, for errors.Is. Every error Parse returns wraps one of them
// (inside a *ParseError when there is a position to report), so that an API
// layer can answer InvalidArgument with the reason and never has to parse
// message text.
var (
	// ErrTooLarge: the input exceeds Options.MaxBytes.
	ErrTooLarge = errors.New("statement file too large")
	// ErrForbiddenDTD: an XML document contains <!DOCTYPE, <!ENTITY or any
	// other declaration. camt messages never need one, and refusing them
	// outright closes the door on entity expansion bombs and external
	// entities whatever the XML library does with them.
	ErrForbiddenDTD = errors.New("DOCTYPE, DTD and entity declarations are not allowed")
	// ErrUnsupportedNamespace: an XML document that is not camt.053 or
	// camt.054 in versions 001.02 to 001.08 (camt.052, pain.*, a newer
	// version, no namespace at all).
	ErrUnsupportedNamespace = errors.New("unsupported ISO 20022 namespace")
	// ErrUnknownFormat: neither XML nor MT940.
	ErrUnknownFormat = errors.New("unknown statement format")
	// ErrMalformed: the file is in a known format but breaks its rules
	// (syntax, missing or out-of-order fields, bad amounts, dates or codes).
	ErrMalformed = errors.New("malformed statement")
)

// ParseError says what is wrong with an input and where.
type ParseError struct {
	Format Format // may be empty when the format could not be told
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	// Field is the XML element path (e.g. "Ntry/Amt") or MT940 field tag
	// (e.g. ":61:") concerned, if any.
	Field  string
	Reason string
	Err    error // one of the sentinels above
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.Format != "" {
		b.WriteString(string(e.Format))
		b.WriteString(": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, " col %d", e.Column)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		if strings.HasSuffix(e.Field, ":") {
			b.WriteString(" ") // MT940 tags end in a colon already: ":61: …"
		} else {
			b.WriteString(": ")
		}
	}
	b.WriteString(e.Reason)
	return b.String()
}

func (e *ParseError) Unwrap() error { return e.Err }
