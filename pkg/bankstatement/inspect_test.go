package bankstatement

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// Golden outputs of `bcx statement inspect`, reviewed by hand against the
// sample files. Regenerate with: go test ./pkg/bankstatement -run Golden -update
func TestInspectGolden(t *testing.T) {
	tests := []struct {
		fixture, golden string
		args            []string
	}{
		{"camt/camt053.v2.multi.statement.xml", "camt053.v2.multi.statement.json", nil},
		{"camt/camt053.v2.minimal.xml", "camt053.v2.minimal.json", nil},
		{"camt/camt054.v2.xml", "camt054.v2.json", nil},
		{"mt940/cmxl/mt940.sta", "cmxl-mt940.json", nil},
		{"mt940/betterplace/sepa_snippet.sta", "sepa_snippet.details.json", []string{"-details"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			var out bytes.Buffer
			args := append(append([]string{"inspect"}, tt.args...), filepath.Join("testdata", tt.fixture))
			if err := Main(args, &out); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", tt.golden)
			if *update {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("inspect output (-want +got):\n%s", diff)
			}
		})
	}
}

// The default output has exactly the documented keys: nothing more, and
// balances only when the statement has them.
func TestInspectShape(t *testing.T) {
	for _, fixture := range []string{"camt/camt053.v2.minimal.xml", "camt/camt054.v2.xml", "mt940/cmxl/mt940.sta"} {
		out, err := Inspect(readFixture(t, fixture))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatal(err)
		}
		checkKeys(t, fixture, doc, []string{"format", "statements"}, nil)
		for _, s := range doc["statements"].([]any) {
			st := s.(map[string]any)
			checkKeys(t, fixture, st, []string{"account", "currency", "balance_check", "entries"}, []string{"opening_balance", "closing_balance"})
			if _, ok := st["opening_balance"].(string); !ok && st["opening_balance"] != nil {
				t.Errorf("%s: opening_balance is not a string", fixture)
			}
			for _, e := range st["entries"].([]any) {
				checkKeys(t, fixture, e.(map[string]any), []string{"amount", "currency", "direction", "booking_date", "value_date", "bank_reference", "end_to_end_id"}, nil)
			}
		}
	}
}

func checkKeys(t *testing.T, where string, m map[string]any, required, optional []string) {
	t.Helper()
	allowed := map[string]bool{}
	for _, k := range append(required, optional...) {
		allowed[k] = true
	}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: key %q missing", where, k)
		}
	}
	var extra []string
	for k := range m {
		if !allowed[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("%s: unexpected keys %v", where, extra)
	}
}

func TestMainErrors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		usage  bool
		sub    error
		reason string
	}{
		{"no subcommand", nil, true, nil, "missing subcommand"},
		{"unknown subcommand", []string{"import", "x"}, true, nil, `unknown subcommand "import"`},
		{"no file", []string{"inspect"}, true, nil, "exactly one FILE"},
		{"two files", []string{"inspect", "a", "b"}, true, nil, "exactly one FILE"},
		{"bad flag", []string{"inspect", "-verbose", "a"}, true, nil, "-verbose"},
		{"bad limit", []string{"inspect", "-max-bytes", "0", "a"}, true, nil, "-max-bytes"},
		{"missing file", []string{"inspect", "testdata/no-such-file.xml"}, false, os.ErrNotExist, "no-such-file.xml"},
		{"unknown namespace", []string{"inspect", "testdata/camt/camt052.v2.xml"}, false, ErrUnsupportedNamespace, "camt.052.001.02"},
		{"no statement", []string{"inspect", "testdata/camt/camt053.v2.wrong.xml"}, false, ErrMalformed, "contains no <Stmt>"},
		{"broken MT940", []string{"inspect", "testdata/mt940/betterplace/sepa_snippet_broken.sta"}, false, ErrMalformed, ":25: field repeated"},
		{"fragment", []string{"inspect", "testdata/mt940/cmxl/closing_balance.sta"}, false, ErrMalformed, "outside a statement"},
		{"too large", []string{"inspect", "-max-bytes", "100", "testdata/camt/camt054.v2.xml"}, false, ErrTooLarge, "100-byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Main(tt.args, &out)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.usage != errors.Is(err, ErrUsage) {
				t.Errorf("usage error %v: %v", tt.usage, err)
			}
			if tt.sub != nil && !errors.Is(err, tt.sub) {
				t.Errorf("%v does not wrap %v", err, tt.sub)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("%q does not mention %q", err, tt.reason)
			}
			if out.Len() != 0 {
				t.Errorf("wrote %q on error", out.String())
			}
		})
	}
}

func TestMainFragmentsAndHelp(t *testing.T) {
	var out bytes.Buffer
	if err := Main([]string{"inspect", "-allow-fragments", "testdata/mt940/cmxl/closing_balance.sta"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"closing_balance": "137.00"`) || strings.Contains(out.String(), "opening_balance") {
		t.Errorf("output %s", out.String())
	}
	out.Reset()
	if err := Main([]string{"help"}, &out); err != nil || !strings.Contains(out.String(), "usage: bcx statement inspect") {
		t.Errorf("help: %v %q", err, out.String())
	}
}

// An inconsistent statement is printed, not refused: refusing it is the
// import's job.
func TestInspectInconsistentIsNotAnError(t *testing.T) {
	out, err := Inspect(readFixture(t, "mt940/betterplace/sepa_snippet.sta"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"balance_check": "inconsistent"`)) {
		t.Errorf("output does not report the inconsistency:\n%s", out)
	}
}
