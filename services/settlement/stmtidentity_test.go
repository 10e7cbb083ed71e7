package settlement_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
)

// reconRows counts the rows an import writes: reports, matched movements
// and recorded file identities.
func (e *env) reconRows() [3]int {
	e.t.Helper()
	var n [3]int
	for i, table := range []string{"stl_recon_reports", "stl_recon_matches", "stl_recon_files"} {
		if err := e.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n[i]); err != nil {
			e.t.Fatal(err)
		}
	}
	return n
}

func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if strings.Count(s, old) != 1 {
		t.Fatalf("%q occurs %d times", old, strings.Count(s, old))
	}
	return strings.Replace(s, old, new, 1)
}

const camt053NS = `xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"`

var (
	betweenTags = regexp.MustCompile(`>\s+<`)
	elemStart   = regexp.MustCompile(`<(/?)([A-Za-z])`)
)

// Renderings of the same camt.053 document.
func camtCompact(s string) string { return betweenTags.ReplaceAllString(s, "><") }
func camtPrefixed(s string) string {
	s = strings.Replace(s, camt053NS, `xmlns:c="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"`, 1)
	return elemStart.ReplaceAllString(s, "<${1}c:${2}")
}
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// TestImportSameStatementsReformatted: the same camt.053 statements,
// re-exported (compact, pretty-printed with CRLF, namespace prefixes,
// attributes in another order, a new message id and creation time, a
// zero-padded sequence number), are the import already made: the first
// reports come back, imported false, nothing is stored.
func TestImportSameStatementsReformatted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.startEURStatementDay()
		e.depositOn(e.bankA, "DEP-EUR-1", memberA, amt("EUR", "8.85"), "000000001", "2015-01-02")
		orig := string(fixture(t, "camt/camt053.v2.multi.statement.xml"))
		first := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: []byte(orig)}))
		if !first.Imported || len(first.Report.Matched) != 1 {
			t.Fatalf("first import = %v", first)
		}
		rows := e.reconRows()
		if rows != [3]int{1, 1, 1} {
			t.Fatalf("rows after the first import = %v", rows)
		}
		for _, tc := range []struct {
			name   string
			render func(string) string
		}{
			{"byte-identical", func(s string) string { return s }},
			{"compact", camtCompact},
			{"CRLF", crlf},
			{"namespace prefix", camtPrefixed},
			{"compact with namespace prefix", func(s string) string { return camtCompact(camtPrefixed(s)) }},
			{"attributes in another order", func(s string) string {
				return mustReplace(t, s, `xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" `+camt053NS,
					camt053NS+` xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`)
			}},
			{"new message id and creation time", func(s string) string {
				s = mustReplace(t, s, "<MsgId>CAMT053RIB000000000001</MsgId>", "<MsgId>RESENT-42</MsgId>")
				return strings.ReplaceAll(s, "2015-03-10T18:43:50+00:00", "2015-03-11T09:00:00+00:00")
			}},
			{"zero-padded sequence number", func(s string) string {
				return mustReplace(t, s, "<ElctrncSeqNb>12312</ElctrncSeqNb>", "<ElctrncSeqNb>0012312</ElctrncSeqNb>")
			}},
			{"amounts with trailing zeros", func(s string) string {
				return mustReplace(t, s, `<Amt Ccy="EUR">8.85</Amt>`, `<Amt Ccy="EUR">8.850</Amt>`)
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				content := tc.render(orig)
				if tc.name != "byte-identical" && content == orig {
					t.Fatal("the rendering changed nothing")
				}
				again := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: []byte(content)}))
				if again.Imported || again.ReportId != first.ReportId || !proto.Equal(again.Report, first.Report) || len(again.Reports) != 1 {
					t.Fatalf("re-import = %v, want the first report %s", again, first.ReportId)
				}
				if got := e.reconRows(); got != rows {
					t.Fatalf("rows %v, want %v", got, rows)
				}
			})
		}
		list := must[*settlementv1.ListReconciliationReportsResponse](t)(e.bankA.Bank.ListReconciliationReports(ctx, &settlementv1.ListReconciliationReportsRequest{}))
		if len(list.Reports) != 1 {
			t.Fatalf("%d reports after re-imports", len(list.Reports))
		}
		// Another bank sending the same statements is another import.
		e.addAccount(memberC, "EUR", bankB)
		other := must[*settlementv1.ImportStatementResponse](t)(e.bankB.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: []byte(camtCompact(orig))}))
		if !other.Imported || other.ReportId == first.ReportId {
			t.Fatalf("bank B import = %v", other)
		}
	})
}

// TestImportStatementChanged: a statement sent again under the same id and
// sequence number with other content, or within a file of other
// statements, is not the same file: it is a new import, as a file of other
// bytes always was (a correction, a later page of a statement, or a bank
// whose statement ids repeat must not be refused).
func TestImportStatementChanged(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.startEURStatementDay()
		orig := string(fixture(t, "camt/camt053.v2.multi.statement.xml"))
		first := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: []byte(orig)}))
		secondStmt := strings.Index(orig, "        <Stmt>\n            <Id>254EUR")
		for _, tc := range []struct {
			name    string
			content string
		}{
			{"entry amount changed (and the closing balance with it)", func() string {
				s := mustReplace(t, orig, `<Amt Ccy="EUR">7.00</Amt>`, `<Amt Ccy="EUR">7.01</Amt>`)
				return mustReplace(t, s, `<Amt Ccy="EUR">20.00</Amt>`, `<Amt Ccy="EUR">19.99</Amt>`)
			}()},
			{"end-to-end id changed, reformatted", camtCompact(mustReplace(t, orig, "<EndToEndId>000000001</EndToEndId>", "<EndToEndId>000000009</EndToEndId>"))},
			{"first entry's value date changed", strings.Replace(orig, "<ValDt>\n                    <Dt>2015-01-02</Dt>", "<ValDt>\n                    <Dt>2015-01-03</Dt>", 1)},
			{"one statement of the file alone", orig[:secondStmt] + orig[strings.Index(orig, "    </BkToCstmrStmt>"):]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.content == orig {
					t.Fatal("the variant changed nothing")
				}
				resp := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: []byte(tc.content)}))
				if !resp.Imported || resp.ReportId == first.ReportId {
					t.Fatalf("import = %v, want a new import", resp)
				}
			})
		}
		// The original is still the same import.
		again := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: []byte(camtCompact(orig))}))
		if again.Imported || again.ReportId != first.ReportId {
			t.Fatalf("re-import = %v", again)
		}
	})
}

// TestImportWithoutStatementIDs: a file whose statements lack ids is keyed
// by its bytes only: the same bytes are a re-import, another rendering is a
// new import.
func TestImportWithoutStatementIDs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.startEURStatementDay()
		orig := string(fixture(t, "camt/camt053.v2.multi.statement.xml"))
		// Only the first statement lacks an id: still no identity.
		noID := mustReplace(t, orig, "<Id>253EURNL26VAYB8060476890</Id>", "")
		first := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: []byte(noID)}))
		if !first.Imported {
			t.Fatalf("first import = %v", first)
		}
		if got := e.reconRows(); got[0] != 1 || got[2] != 0 {
			t.Fatalf("rows = %v, want one report and no recorded statement", got)
		}
		same := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: []byte(noID)}))
		if same.Imported || same.ReportId != first.ReportId {
			t.Fatalf("byte-identical re-import = %v", same)
		}
		other := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: []byte(camtCompact(noID))}))
		if !other.Imported || other.ReportId == first.ReportId {
			t.Fatalf("another rendering = %v, want a new import", other)
		}
		if got := e.reconRows(); got[0] != 2 || got[2] != 0 {
			t.Fatalf("rows = %v", got)
		}
	})
}

// TestImportMT940SameStatements: MT940 statements are identified by :20:,
// :25: and :28C: and their content: the same file with CRLF line ends and
// unpadded sequence numbers is the same import; a changed reference or
// amount is a new one.
func TestImportMT940SameStatements(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.clk.Set(time.Date(2010, 3, 19, 10, 0, 0, 0, shanghai))
		e.addAccount(memberA, "EUR", bankA)
		e.depositOn(e.bankA, "32-P1-TCS49518", memberA, amt("EUR", "27.00"), "", "2010-03-19")
		orig := string(fixture(t, "mt940/with_binary_character.sta"))
		first := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: []byte(orig)}))
		if !first.Imported || len(first.Reports) != 2 {
			t.Fatalf("first import = %v", first)
		}
		rows := e.reconRows()
		for _, tc := range []struct {
			name, content string
			isNew         bool
		}{
			{"CRLF", crlf(orig), false},
			{"unpadded sequence numbers", strings.ReplaceAll(strings.ReplaceAll(orig, ":28C:00027/00001", ":28C:27/1"), ":28C:00053/00001", ":28C:53/1"), false},
			{"bank reference changed", mustReplace(t, orig, "//32-P1-TCS49518", "//32-P1-TCS49519"), true},
			{"second statement's amount changed", mustReplace(t, mustReplace(t, orig, "CR1120,00N085", "CR1121,00N085"), "C100319EUR131193,19", "C100319EUR131194,19"), true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.content == orig {
					t.Fatal("the variant changed nothing")
				}
				resp := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: []byte(tc.content)}))
				if tc.isNew {
					if !resp.Imported || resp.ReportId == first.ReportId {
						t.Fatalf("import = %v, want a new import", resp)
					}
					rows = e.reconRows()
					return
				}
				if resp.Imported || resp.ReportId != first.ReportId || len(resp.Reports) != 2 || !proto.Equal(resp.Reports[1], first.Reports[1]) {
					t.Fatalf("re-import = %v", resp)
				}
				if got := e.reconRows(); got != rows {
					t.Fatalf("rows %v, want %v", got, rows)
				}
			})
		}
	})
}

// TestImportSameStatementsRacing: renderings of the same statements
// imported at once reconcile them once; every caller gets the same reports.
func TestImportSameStatementsRacing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.startEURStatementDay()
		orig := string(fixture(t, "camt/camt053.v2.multi.statement.xml"))
		renderings := []string{orig, camtCompact(orig), crlf(orig), camtPrefixed(orig), camtCompact(camtPrefixed(orig)), crlf(camtPrefixed(orig))}
		resps := make([]*settlementv1.ImportStatementResponse, len(renderings))
		errs := make([]error, len(renderings))
		var wg sync.WaitGroup
		for i, content := range renderings {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resps[i], errs[i] = e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: []byte(content)})
			}()
		}
		wg.Wait()
		imported := 0
		for i, err := range errs {
			if err != nil {
				t.Fatalf("rendering %d: %v", i, err)
			}
			if resps[i].Imported {
				imported++
			}
			if resps[i].ReportId != resps[0].ReportId {
				t.Fatalf("report ids %s and %s", resps[i].ReportId, resps[0].ReportId)
			}
		}
		if imported != 1 {
			t.Fatalf("%d imports, want 1", imported)
		}
		if got := e.reconRows(); got != [3]int{1, 0, 1} {
			t.Fatalf("rows = %v", got)
		}
	})
}

// startEURStatementDay starts the service on the day of the camt samples
// (2015-01-02) with member A's EUR account at bank A, as the statement
// tests need.
func (e *env) startEURStatementDay() {
	e.clk.Set(time.Date(2015, 1, 2, 10, 0, 0, 0, shanghai))
	e.addAccount(memberA, "EUR", bankA)
	e.start()
}
