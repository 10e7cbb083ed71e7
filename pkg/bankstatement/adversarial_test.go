package bankstatement

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Inputs built to hit quadratic paths: each is a few MiB and must be
// answered (accepted or refused) in linear time. The time bound is loose so
// that a loaded machine does not fail it; a quadratic path would take
// minutes.
func TestAdversarialInputsAreLinear(t *testing.T) {
	const n = 400_000
	var minified bytes.Buffer
	if err := GenerateCamt053(&minified, 20_000, 3); err != nil {
		t.Fatal(err)
	}
	oneLine := bytes.ReplaceAll(minified.Bytes(), []byte("\n"), nil)

	tests := []struct {
		name   string
		data   []byte
		accept bool
		reason string
	}{
		{"MT940 :86: with many continuation lines",
			[]byte(":20:X\n:25:A\n:60F:C260101EUR0,\n:61:2601010101C1,NTRFX\n:86:166?00X" + strings.Repeat("\n?20abc", n) + "\n:62F:C260101EUR1,\n"),
			true, ""},
		{"MT940 :86: full of SEPA keywords",
			[]byte(":20:X\n:25:A\n:60F:C260101EUR0,\n:61:2601010101C1,NTRFX\n:86:166?20" + strings.Repeat("EREF+", n) + "\n:62F:C260101EUR1,\n"),
			true, ""},
		{"MT940 many entries", []byte(":20:X\n:25:A\n:60F:C260101EUR0,\n" + strings.Repeat(":61:2601010101C1,NTRFX\n", n/4) + ":62F:C260101EUR100000,\n"),
			true, ""},
		{"XML element with many attributes", []byte(`<Document xmlns="` + camtNS("053", "02") + `"` + manyAttrs(n) + `/>`),
			false, "more than 32 attributes"},
		{"XML deep nesting", camt053(testAcct + strings.Repeat("<a>", n)),
			false, "nested deeper"},
		{"XML many references", camt053(testAcct + `<Ntry><NtryRef>` + strings.Repeat("&amp;", n) + `</NtryRef><Amt Ccy="CNY">1</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>`),
			true, ""},
		{"XML many comments", camt053(testAcct + strings.Repeat("<!-- x -->", n)), true, ""},
		{"XML many unknown elements", camt053(testAcct + strings.Repeat("<Unknown><X>1</X></Unknown>", n/4)), true, ""},
		{"minified camt.053", oneLine, true, ""},
		{"XML bad reference at the end of a long text", camt053(testAcct + `<Ntry><NtryRef>` + strings.Repeat("x", 4*n) + `&bad</NtryRef></Ntry>`),
			false, "entity reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			f, err := Parse(tt.data)
			if elapsed := time.Since(start); elapsed > 20*time.Second {
				t.Errorf("took %v for %d bytes", elapsed, len(tt.data))
			}
			if tt.accept {
				if err != nil {
					t.Fatal(err)
				}
				if len(f.Statements) != 1 {
					t.Errorf("%d statements", len(f.Statements))
				}
				return
			}
			wantParseError(t, err, ErrMalformed, tt.reason)
		})
	}
}

func TestMinifiedCamtLineNumbers(t *testing.T) {
	var buf bytes.Buffer
	if err := GenerateCamt053(&buf, 10, 3); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(bytes.ReplaceAll(buf.Bytes(), []byte("\n"), nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range f.Statements[0].Entries {
		if e.Line != 1 {
			t.Fatalf("entry on line %d of a one-line document", e.Line)
		}
	}
	f, err = Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	// The generator writes one entry per line, after 10 header lines.
	for i, e := range f.Statements[0].Entries {
		if e.Line != 11+i {
			t.Fatalf("entry %d on line %d, want %d", i, e.Line, 11+i)
		}
	}
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, ` a%d="1"`, i)
	}
	return b.String()
}
