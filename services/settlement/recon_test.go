package settlement_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/settlement"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func amt(ccy, amount string) *typev1.Money { return &typev1.Money{Currency: ccy, Amount: amount} }

// addAccount gives a member a settlement account in one more currency.
func (e *env) addAccount(member, ccy, bank string) {
	e.t.Helper()
	if _, err := e.opListing.AddSettlementAccount(context.Background(), &listingv1.AddSettlementAccountRequest{
		Account: &listingv1.SettlementAccount{ParticipantId: member, Currency: ccy, BankParticipantId: bank, AccountNumber: member + "-" + ccy}}); err != nil {
		e.t.Fatal(err)
	}
}

// withdrawAndConfirm pays a member out and has its bank confirm with a
// reference; it returns the instruction.
func (e *env) withdrawAndConfirm(c client, bank client, key string, amount *typev1.Money, bankRef string) string {
	e.t.Helper()
	ctx := context.Background()
	w, err := c.RequestWithdrawal(ctx, &settlementv1.RequestWithdrawalRequest{IdempotencyKey: key, Amount: amount})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := bank.Bank.ConfirmInstruction(ctx, &settlementv1.ConfirmInstructionRequest{InstructionId: w.InstructionId, BankReference: bankRef}); err != nil {
		e.t.Fatal(err)
	}
	return w.InstructionId
}

func (e *env) depositOn(bank client, ref, member string, amount *typev1.Money, e2e, valueDate string) {
	e.t.Helper()
	if _, err := bank.Bank.PostDepositNotice(context.Background(), &settlementv1.PostDepositNoticeRequest{BankReference: ref,
		ParticipantId: member, Amount: amount, EndToEndId: e2e, ValueDate: valueDate}); err != nil {
		e.t.Fatal(err)
	}
}

// TestReconcileCamt053 reconciles a two-page camt.053.001.02 (genkgo/camt
// sample): one entry matches a deposit by end-to-end id, one a confirmed
// withdrawal by amount and value date; a deposit the bank never booked is an
// unmatched ledger movement; the unexplained difference is the closing
// balance less what the ledger expects.
func TestReconcileCamt053(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.startEURStatementDay()
		e.depositOn(e.bankA, "DEP-EUR-1", memberA, amt("EUR", "8.85"), "000000001", "2015-01-02")
		e.depositOn(e.bankA, "DEP-EUR-2", memberA, amt("EUR", "5.00"), "", "2014-12-31")
		e.outboxDone("deposit/" + bankA + "/DEP-EUR-1")
		instr := e.withdrawAndConfirm(e.alpha, e.bankA, "wd-eur", amt("EUR", "7.00"), "BANKREF-7")

		content := fixture(t, "camt/camt053.v2.multi.statement.xml")
		resp := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: content}))
		r := resp.Report
		if !resp.Imported || r.ReportId != resp.ReportId || r.Format != "camt.053" || r.Account != "NL26VAYB8060476890" ||
			r.Currency != "EUR" || r.BalanceCheck != "consistent" || r.BankParticipantId != bankA {
			t.Fatalf("report header = %v", r)
		}
		want := []*settlementv1.MatchedEntry{
			{EndToEndId: "000000001", Amount: amt("EUR", "8.85"), LedgerReferences: []string{"deposit/BANK-QDCB/DEP-EUR-1"}, MatchedBy: "end_to_end_id"},
			{EndToEndId: "000000002", Amount: amt("EUR", "-7.00"), LedgerReferences: []string{"instruction/" + instr}, MatchedBy: "amount_date"},
		}
		if !equalEntries(r.Matched, want) {
			t.Fatalf("matched = %v, want %v", r.Matched, want)
		}
		if len(r.UnmatchedLedgerMovements) != 1 || r.UnmatchedLedgerMovements[0].Amount.Amount != "5.00" ||
			r.UnmatchedLedgerMovements[0].LedgerReferences[0] != "deposit/BANK-QDCB/DEP-EUR-2" {
			t.Fatalf("unmatched ledger movements = %v", r.UnmatchedLedgerMovements)
		}
		if len(r.UnmatchedBankEntries) != 0 || len(r.AmountMismatches) != 0 {
			t.Fatalf("breaks = %v / %v", r.UnmatchedBankEntries, r.AmountMismatches)
		}
		// Closing 20.00 less the ledger's 8.85 - 7.00 + 5.00.
		if r.UnexplainedDifference.GetAmount() != "13.15" {
			t.Fatalf("unexplained = %v", r.UnexplainedDifference)
		}

		if len(resp.Reports) != 1 || !proto.Equal(resp.Reports[0], resp.Report) {
			t.Fatalf("reports = %v, want just the one report", resp.Reports)
		}

		// The same file again changes nothing.
		again := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: content}))
		if again.Imported || again.ReportId != resp.ReportId || !proto.Equal(again.Report, resp.Report) {
			t.Fatalf("re-import = %v", again)
		}
		list := must[*settlementv1.ListReconciliationReportsResponse](t)(e.bankA.Bank.ListReconciliationReports(ctx, &settlementv1.ListReconciliationReportsRequest{}))
		if len(list.Reports) != 1 {
			t.Fatalf("%d reports after a re-import", len(list.Reports))
		}
		// Another bank sees neither the report nor the list entry; operators see both.
		_, errOther := e.bankB.Bank.GetReconciliationReport(ctx, &settlementv1.GetReconciliationReportRequest{ReportId: resp.ReportId})
		_, errNone := e.bankB.Bank.GetReconciliationReport(ctx, &settlementv1.GetReconciliationReportRequest{ReportId: "R000-1"})
		wantCode(t, errOther, codes.NotFound)
		if stripID(errOther.Error(), resp.ReportId) != stripID(errNone.Error(), "R000-1") {
			t.Fatalf("%q vs %q", errOther, errNone)
		}
		if l := must[*settlementv1.ListReconciliationReportsResponse](t)(e.bankB.Bank.ListReconciliationReports(ctx, &settlementv1.ListReconciliationReportsRequest{})); len(l.Reports) != 0 {
			t.Fatalf("bank B lists %v", l.Reports)
		}
		got := must[*settlementv1.GetReconciliationReportResponse](t)(e.operator.Bank.GetReconciliationReport(ctx, &settlementv1.GetReconciliationReportRequest{ReportId: resp.ReportId}))
		if !proto.Equal(got.Report, resp.Report) {
			t.Fatalf("operator reads %v", got.Report)
		}
		e.checkLedger()
	})
}

func equalEntries(got, want []*settlementv1.MatchedEntry) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			return false
		}
	}
	return true
}

// TestReconcileOneToMany: a camt.054 debit notification books three
// withdrawals the bank paid as one entry under one reference.
func TestReconcileOneToMany(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.clk.Set(time.Date(2007, 10, 18, 10, 0, 0, 0, shanghai))
		e.addAccount(memberA, "SEK", bankA)
		e.start()
		e.depositOn(e.bankA, "DEP-SEK", memberA, amt("SEK", "300000.00"), "", "2007-10-18")
		e.outboxDone("deposit/" + bankA + "/DEP-SEK")
		var refs []string
		for _, a := range []string{"50000.00", "70000.00", "80000.00"} {
			refs = append(refs, "instruction/"+e.withdrawAndConfirm(e.alpha, e.bankA, "wd-"+a, amt("SEK", a), "AAAASESS-FP-ACCR001"))
		}
		resp := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{
			Content: fixture(t, "camt/camt054.v2.xml")}))
		r := resp.Report
		if r.Format != "camt.054" || r.BalanceCheck != "unchecked" || r.UnexplainedDifference != nil || r.Currency != "SEK" {
			t.Fatalf("report = %v", r)
		}
		want := []*settlementv1.MatchedEntry{{BankReference: "AAAASESS-FP-ACCR001", EndToEndId: "MUELL/FINP/RA12345",
			Amount: amt("SEK", "-200000.00"), LedgerReferences: refs, MatchedBy: "bank_reference"}}
		if !equalEntries(r.Matched, want) {
			t.Fatalf("matched = %v, want %v", r.Matched, want)
		}
		if len(r.UnmatchedLedgerMovements) != 1 || r.UnmatchedLedgerMovements[0].LedgerReferences[0] != "deposit/BANK-QDCB/DEP-SEK" {
			t.Fatalf("unmatched ledger movements = %v", r.UnmatchedLedgerMovements)
		}
	})
}

// TestReconcileMT940: an MT940 file with two accounts gives two reports; an
// entry matches a deposit by the bank's reference.
func TestReconcileMT940(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.clk.Set(time.Date(2010, 3, 19, 10, 0, 0, 0, shanghai))
		e.addAccount(memberA, "EUR", bankA)
		e.depositOn(e.bankA, "32-P1-TCS49518", memberA, amt("EUR", "27.00"), "", "2010-03-19")
		resp := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{
			Content: fixture(t, "mt940/with_binary_character.sta")}))
		r := resp.Report
		if r.Format != "mt940" || r.Account != "51230800/0000007055" || r.BalanceCheck != "consistent" || len(r.Matched) != 1 ||
			r.Matched[0].MatchedBy != "bank_reference" || len(r.UnmatchedBankEntries) != 2 || r.UnexplainedDifference.GetAmount() != "199902.02" {
			t.Fatalf("report = %v", r)
		}
		list := must[*settlementv1.ListReconciliationReportsResponse](t)(e.operator.Bank.ListReconciliationReports(ctx, &settlementv1.ListReconciliationReportsRequest{}))
		if len(list.Reports) != 2 || list.Reports[1].Account != "51230800/0000007304" || len(list.Reports[1].UnmatchedBankEntries) != 1 {
			t.Fatalf("reports = %v", list.Reports)
		}
	})
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	st := wantCode(t, err, codes.InvalidArgument)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Reason == reason {
			return
		}
	}
	t.Fatalf("%v: want reason %s", err, reason)
}

// TestImportRefusals: every bad file is refused with its reason, and nothing
// is stored.
func TestImportRefusals(t *testing.T) {
	small := func(c *settlement.Config) { c.MaxStatementBytes = 16 << 10 }
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.depositOn(e.bankA, "DEP-1", memberA, cny("10.00"), "", "2026-03-02")
		xxe := `<?xml version="1.0"?><!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>` +
			`<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>&x;</BkToCstmrStmt></Document>`
		bomb := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
			`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><Document>&lol3;</Document>`
		for _, tc := range []struct {
			name    string
			content []byte
			reason  string
		}{
			{"closing balance in another currency", fixture(t, "camt/camt053.v2.minimal.xml"), "STATEMENT_INCONSISTENT"},
			{"camt.053.001.04 that does not add up", fixture(t, "camt/camt053.v4.xml"), "STATEMENT_INCONSISTENT"},
			{"MT940 that does not add up", fixture(t, "mt940/sepa_snippet.sta"), "STATEMENT_INCONSISTENT"},
			{"camt.052 namespace", fixture(t, "camt/camt052.v2.xml"), "STATEMENT_UNSUPPORTED_NAMESPACE"},
			{"no statement", fixture(t, "camt/camt053.v2.wrong.xml"), "STATEMENT_MALFORMED"},
			{"broken MT940", fixture(t, "mt940/sepa_snippet_broken.sta"), "STATEMENT_MALFORMED"},
			{"currency the exchange does not settle (DEM)", fixture(t, "mt940/cmxl_mt940.sta"), "STATEMENT_UNKNOWN_CURRENCY"},
			{"too large", fixture(t, "mt940/sepa_mt9401.sta"), "STATEMENT_TOO_LARGE"},
			{"external entity", []byte(xxe), "STATEMENT_FORBIDDEN_DTD"},
			{"entity expansion bomb", []byte(bomb), "STATEMENT_FORBIDDEN_DTD"},
			{"not a statement", []byte("hello, bank"), "STATEMENT_UNKNOWN_FORMAT"},
			{"empty", nil, "STATEMENT_UNKNOWN_FORMAT"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: tc.content})
				wantReason(t, err, tc.reason)
				if strings.Contains(err.Error(), "root:") {
					t.Fatal("the external entity was resolved")
				}
			})
		}
		list := must[*settlementv1.ListReconciliationReportsResponse](t)(e.operator.Bank.ListReconciliationReports(ctx, &settlementv1.ListReconciliationReportsRequest{}))
		if len(list.Reports) != 0 {
			t.Fatalf("refused files left reports: %v", list.Reports)
		}
		// Members and operators cannot import.
		_, err := e.alpha.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: fixture(t, "camt/camt054.v2.xml")})
		wantCode(t, err, codes.PermissionDenied)
		_, err = e.operator.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: fixture(t, "camt/camt054.v2.xml")})
		wantCode(t, err, codes.PermissionDenied)
	}, small)
}

func TestImportFileMain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		var out strings.Builder
		if err := settlement.ImportFileMain(context.Background(), e.bankA.Bank, []string{"testdata/camt/camt054.v2.xml"}, &out); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Imported bool `json:"imported"`
			Report   struct {
				Format string `json:"format"`
			} `json:"report"`
		}
		if err := json.Unmarshal([]byte(out.String()), &got); err != nil || !got.Imported || got.Report.Format != "camt.054" {
			t.Fatalf("output %s (%v)", out.String(), err)
		}
		err := settlement.ImportFileMain(context.Background(), e.bankA.Bank, []string{"testdata/camt/camt052.v2.xml"}, &out)
		if err == nil || !strings.Contains(err.Error(), "namespace") {
			t.Fatalf("camt.052: %v", err)
		}
	})
}

// TestImportReturnsEveryReport imports a file whose two statements are for
// two accounts: the response carries a report for each.
func TestImportReturnsEveryReport(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.startEURStatementDay()
		content := string(fixture(t, "camt/camt053.v2.multi.statement.xml"))
		// Make the second statement another account's.
		i := strings.Index(content, "<Id>254EUR")
		content = content[:i] + strings.ReplaceAll(content[i:], "NL26VAYB8060476890", "NL26VAYB8060476891")
		resp := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: []byte(content)}))
		if len(resp.Reports) != 2 || !proto.Equal(resp.Reports[0], resp.Report) || resp.ReportId != resp.Report.ReportId {
			t.Fatalf("reports = %v", resp.Reports)
		}
		accounts := map[string]bool{resp.Reports[0].Account: true, resp.Reports[1].Account: true}
		if !accounts["NL26VAYB8060476890"] || !accounts["NL26VAYB8060476891"] {
			t.Fatalf("report accounts %v", accounts)
		}
	})
}
