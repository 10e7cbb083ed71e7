package bankstatement

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the parser. Nothing may panic; every
// refusal is a *ParseError wrapping one of the sentinels; and whatever is
// accepted satisfies the model's invariants and prints as inspect JSON.
//
//	go test ./pkg/bankstatement -run '^$' -fuzz FuzzParse -fuzztime 30s
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/camt/*.xml")
	more, _ := filepath.Glob("testdata/mt940/*/*.sta")
	for _, name := range append(files, more...) {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	var gen bytes.Buffer
	if err := GenerateCamt053(&gen, 3, 1); err != nil {
		f.Fatal(err)
	}
	f.Add(gen.Bytes())
	f.Add([]byte(mtSample))
	f.Add(camt053(testAcct + bal("OPBD", "1.00", "DBIT") + bal("CLBD", "2.00", "CRDT") + ntry("3.00", "CRDT", "")))
	f.Add(camtDocument(camtNS("054", "05"), testAcct+ntry("1.5", "DBIT", "<NtryDtls><TxDtls><Refs><EndToEndId>E</EndToEndId></Refs></TxDtls></NtryDtls>")))

	sentinels := []error{ErrTooLarge, ErrForbiddenDTD, ErrUnsupportedNamespace, ErrUnknownFormat, ErrMalformed}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, opts := range []Options{{}, {AllowMT940Fragments: true}} {
			file, err := opts.Parse(data)
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("error %v is not a *ParseError", err)
				}
				known := false
				for _, s := range sentinels {
					known = known || errors.Is(err, s)
				}
				if !known || pe.Reason == "" {
					t.Fatalf("error %q wraps no sentinel or has no reason", err)
				}
				continue
			}
			if len(file.Statements) == 0 {
				t.Fatal("accepted a file with no statements")
			}
			for _, st := range file.Statements {
				if !opts.AllowMT940Fragments && st.Account == "" {
					t.Fatalf("statement without an account: %+v", st)
				}
				for _, e := range st.Entries {
					if e.Amount.IsNegative() {
						t.Fatalf("negative entry amount %s", e.Amount)
					}
					if e.Direction != Credit && e.Direction != Debit {
						t.Fatalf("entry direction %q", e.Direction)
					}
				}
				c := st.CheckBalance()
				switch c.Status {
				case Consistent:
					if !c.Difference.IsZero() {
						t.Fatalf("consistent with difference %s", c.Difference)
					}
				case Inconsistent:
					if c.Reason == "" {
						t.Fatal("inconsistent without a reason")
					}
				case Unchecked:
					if st.OpeningBalance != nil && st.ClosingBalance != nil {
						t.Fatal("unchecked although both balances are present")
					}
				default:
					t.Fatalf("check status %q", c.Status)
				}
			}
			if _, err := InspectJSON(file, true); err != nil {
				t.Fatal(err)
			}
		}
	})
}
