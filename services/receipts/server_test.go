package receipts_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
	"github.com/bcx-exchange/bcx/services/receipts"
)

func TestPolicyCoversEveryMethod(t *testing.T) {
	p := receipts.Policy()
	sd := receiptsv1.File_bcx_receipts_v1_receipts_proto.Services().ByName("ReceiptsService")
	methods := sd.Methods()
	if len(p) != methods.Len() {
		t.Fatalf("policy has %d entries, the service %d methods", len(p), methods.Len())
	}
	for i := 0; i < methods.Len(); i++ {
		m := "/bcx.receipts.v1.ReceiptsService/" + string(methods.Get(i).Name())
		if len(p[m]) == 0 {
			t.Errorf("%s: no roles", m)
		}
	}
	if roles := p["/bcx.receipts.v1.ReceiptsService/IssueReceipt"]; !slices.Equal(roles, []typev1.Role{typev1.Role_ROLE_WAREHOUSE}) {
		t.Errorf("IssueReceipt roles %v", roles)
	}
}

func TestIssueAndRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		req := cotton("CF-0001", "5.013", "4.987", "5")
		// Pieces come back in piece-number order whatever order they were sent in.
		req.Pieces[0], req.Pieces[2] = req.Pieces[2], req.Pieces[0]
		got := e.issue(req)
		if got.NetWeight != "15" || got.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE ||
			got.Encumbrance != receiptsv1.Encumbrance_ENCUMBRANCE_NONE || got.CustomsStatus != typev1.CustomsStatus_CUSTOMS_STATUS_DUTY_PAID ||
			got.HolderParticipantId != listing.DemoMemberA || got.HeadHash == "" || got.IssuedAt == nil {
			t.Fatalf("issued %v", got)
		}
		var pieces []string
		for _, p := range got.Pieces {
			pieces = append(pieces, p.Number+"="+p.NetWeight)
		}
		if s := strings.Join(pieces, " "); s != "CF-0001-B1=5.013 CF-0001-B2=4.987 CF-0001-B3=5" {
			t.Fatalf("pieces %s", s)
		}
		// Holder, warehouse and operator see it, with its history.
		for _, c := range []receiptsv1.ReceiptsServiceClient{e.alpha, e.wh, e.operator} {
			resp := e.get(c, "CF-0001")
			if !proto.Equal(resp.Receipt, got) || kinds(resp.History) != "issued" || resp.History[0].Hash != got.HeadHash {
				t.Fatalf("get = %v", resp)
			}
		}
		// Everyone else gets exactly the answer for a receipt that does not exist.
		for _, c := range []receiptsv1.ReceiptsServiceClient{e.beta, e.bank, e.wh2} {
			_, err := c.GetReceipt(ctx, &receiptsv1.GetReceiptRequest{ReceiptNumber: "CF-0001"})
			wantNotFound(t, err, "CF-0001")
		}
		_, err := e.alpha.GetReceipt(ctx, &receiptsv1.GetReceiptRequest{ReceiptNumber: "CF-9999"})
		wantNotFound(t, err, "CF-9999")
		// Idempotency: the same key and request answer the first result; another
		// request under the key is refused.
		keyed := &receiptsv1.IssueReceiptRequest{IdempotencyKey: "wh-1", Receipt: cotton("CF-0002")}
		first, err := e.wh.IssueReceipt(ctx, keyed)
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.wh.IssueReceipt(ctx, keyed)
		if err != nil || !proto.Equal(first, again) {
			t.Fatalf("repeat = %v, %v", again, err)
		}
		keyed.Receipt = cotton("CF-0003")
		_, err = e.wh.IssueReceipt(ctx, keyed)
		wantField(t, err, "idempotency_key")
		// Without a key, a second issue of the number is refused.
		_, err = e.wh.IssueReceipt(ctx, &receiptsv1.IssueReceiptRequest{Receipt: cotton("CF-0002")})
		wantCode(t, err, codes.AlreadyExists)
		// Only warehouses issue.
		_, err = e.alpha.IssueReceipt(ctx, &receiptsv1.IssueReceiptRequest{Receipt: cotton("CF-0004")})
		wantCode(t, err, codes.PermissionDenied)
		// Bonded goods: the customs status follows the warehouse.
		nr := &receiptsv1.Receipt{ReceiptNumber: "NR-1", Warehouse: "QD-FTZ-NR01", Commodity: "NR", Grade: "TSR20",
			ProductionDate: "2025-03-01", InspectionCertificate: "CIQ-NR", ExpiryDate: date(90), HolderParticipantId: listing.DemoMemberB,
			NetWeight: "20.16", Pieces: []*receiptsv1.Piece{{Number: "NR-1-P1", NetWeight: "10.08"}, {Number: "NR-1-P2", NetWeight: "10.08"}}}
		if got := e.issue(nr); got.CustomsStatus != typev1.CustomsStatus_CUSTOMS_STATUS_BONDED {
			t.Fatalf("bonded warehouse issued %v", got.CustomsStatus)
		}
	})
}

func TestIssueBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.issue(cotton("LIVE-1", "5", "5"))
		before := e.root()
		mod := func(f func(r *receiptsv1.Receipt)) *receiptsv1.Receipt {
			r := cotton("BAD-1", "5", "5")
			f(r)
			return r
		}
		for _, tc := range []struct {
			name  string
			c     receiptsv1.ReceiptsServiceClient
			r     *receiptsv1.Receipt
			field string
			code  codes.Code
		}{
			{"zero weight", e.wh, mod(func(r *receiptsv1.Receipt) { r.NetWeight = "0" }), "receipt.net_weight", 0},
			{"negative weight", e.wh, mod(func(r *receiptsv1.Receipt) { r.NetWeight = "-10" }), "receipt.net_weight", 0},
			{"too precise", e.wh, mod(func(r *receiptsv1.Receipt) { r.NetWeight = "10.0001" }), "receipt.net_weight", 0},
			{"not a number", e.wh, mod(func(r *receiptsv1.Receipt) { r.NetWeight = "1e3" }), "receipt.net_weight", 0},
			{"piece too precise", e.wh, mod(func(r *receiptsv1.Receipt) { r.Pieces[1].NetWeight = "5.0005" }), "receipt.pieces[1].net_weight", 0},
			{"piece zero", e.wh, mod(func(r *receiptsv1.Receipt) { r.Pieces[0].NetWeight = "0" }), "receipt.pieces[0].net_weight", 0},
			{"duplicate piece", e.wh, mod(func(r *receiptsv1.Receipt) { r.Pieces[1].Number = r.Pieces[0].Number }), "receipt.pieces[1].number", 0},
			{"pieces do not sum", e.wh, mod(func(r *receiptsv1.Receipt) { r.NetWeight = "10.001" }), "receipt.pieces", 0},
			{"no pieces", e.wh, mod(func(r *receiptsv1.Receipt) { r.Pieces = nil }), "receipt.pieces", 0},
			{"expiry before issue", e.wh, mod(func(r *receiptsv1.Receipt) { r.ExpiryDate = date(-1) }), "receipt.expiry_date", 0},
			{"expiry on issue day", e.wh, mod(func(r *receiptsv1.Receipt) { r.ExpiryDate = time.Now().In(shanghai).Format(time.DateOnly) }), "receipt.expiry_date", 0},
			{"expiry malformed", e.wh, mod(func(r *receiptsv1.Receipt) { r.ExpiryDate = "2030/01/01" }), "receipt.expiry_date", 0},
			{"another warehouse's code", e.wh2, mod(func(*receiptsv1.Receipt) {}), "receipt.warehouse", 0},
			{"unknown warehouse", e.wh, mod(func(r *receiptsv1.Receipt) { r.Warehouse = "QD-NOPE" }), "receipt.warehouse", 0},
			{"holder is a bank", e.wh, mod(func(r *receiptsv1.Receipt) { r.HolderParticipantId = listing.DemoBank }), "receipt.holder_participant_id", 0},
			{"unknown holder", e.wh, mod(func(r *receiptsv1.Receipt) { r.HolderParticipantId = "M-NOBODY" }), "receipt.holder_participant_id", 0},
			{"grade of another commodity", e.wh, mod(func(r *receiptsv1.Receipt) { r.Grade = "TSR20" }), "receipt.grade", 0},
			{"unknown commodity", e.wh, mod(func(r *receiptsv1.Receipt) { r.Commodity = "ZZ" }), "receipt.commodity", 0},
			{"bonded goods in a duty-paid warehouse", e.wh, mod(func(r *receiptsv1.Receipt) { r.CustomsStatus = typev1.CustomsStatus_CUSTOMS_STATUS_BONDED }), "receipt.customs_status", 0},
			{"production in the future", e.wh, mod(func(r *receiptsv1.Receipt) { r.ProductionDate = date(400) }), "receipt.production_date", 0},
			{"no inspection certificate", e.wh, mod(func(r *receiptsv1.Receipt) { r.InspectionCertificate = "" }), "receipt.inspection_certificate", 0},
			{"lower-case number", e.wh, mod(func(r *receiptsv1.Receipt) { r.ReceiptNumber = "bad-1" }), "receipt.receipt_number", 0},
			{"dotted number", e.wh, mod(func(r *receiptsv1.Receipt) { r.ReceiptNumber = "LIVE-1.1" }), "receipt.receipt_number", 0},
			{"piece on a live receipt", e.wh, mod(func(r *receiptsv1.Receipt) { r.Pieces[1].Number = "LIVE-1-B2" }), "receipt.pieces[1].number", codes.AlreadyExists},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := tc.c.IssueReceipt(ctx, &receiptsv1.IssueReceiptRequest{Receipt: tc.r})
				if tc.code != 0 {
					wantCode(t, err, tc.code)
				} else {
					wantField(t, err, tc.field)
				}
				if after := e.root(); after.Index != before.Index || after.Hash != before.Hash {
					t.Fatalf("root moved from %v to %v", before, after)
				}
				_, err = e.operator.GetReceipt(ctx, &receiptsv1.GetReceiptRequest{ReceiptNumber: tc.r.ReceiptNumber})
				if status.Code(err) != codes.NotFound && status.Code(err) != codes.InvalidArgument {
					t.Fatalf("receipt %s exists after a refused issue: %v", tc.r.ReceiptNumber, err)
				}
			})
		}
		// An unknown warehouse and another operator's look the same to a warehouse.
		_, err1 := e.wh2.IssueReceipt(ctx, &receiptsv1.IssueReceiptRequest{Receipt: cotton("BAD-2")})
		r := cotton("BAD-2")
		r.Warehouse = "QD-NOPE"
		_, err2 := e.wh.IssueReceipt(ctx, &receiptsv1.IssueReceiptRequest{Receipt: r})
		m1, m2 := status.Convert(err1).Message(), status.Convert(err2).Message()
		if strings.Replace(m1, "QD-CF01", "X", 1) != strings.Replace(m2, "QD-NOPE", "X", 1) {
			t.Fatalf("different answers: %q / %q", m1, m2)
		}
		if n := e.count(`SELECT COUNT(*) FROM live_pieces`); n != 2 {
			t.Fatalf("%d live pieces, want 2", n)
		}
	})
}

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

func TestDepositAndWithdraw(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.issue(cotton("D-1", "5", "5.01", "4.99", "5", "3")) // 23 t: 4 lots of 5 t
		resp := e.deposit(e.alpha, "D-1")
		if resp.Receipt.Encumbrance != receiptsv1.Encumbrance_ENCUMBRANCE_TRADING_CUSTODY {
			t.Fatalf("after deposit: %v", resp.Receipt)
		}
		var credited []string
		for _, c := range resp.Credited {
			credited = append(credited, c.Symbol+"="+c.Quantity)
		}
		if s := strings.Join(credited, " "); s != "CF3128B-ALL=20 CF3128B-QD=20" {
			t.Fatalf("credited %s", s)
		}
		credits := e.core.Credits()
		if len(credits) != 1 || credits[0].IdempotencyKey != "deposit/D-1/1" || credits[0].ParticipantId != listing.DemoMemberA ||
			credits[0].Weight != "23" || strings.Join(credits[0].Symbols, ",") != "CF3128B-ALL,CF3128B-QD" {
			t.Fatalf("credit commands %v", credits)
		}
		if e.pending("D-1") != "" {
			t.Fatal("deposit still pending after the answer")
		}
		// Refused in custody: a second deposit, a pledge, a split, a cancellation.
		_, err := e.alpha.DepositReceipt(ctx, &receiptsv1.DepositReceiptRequest{ReceiptNumber: "D-1"})
		wantState(t, err, "TRADING_CUSTODY")
		_, err = e.alpha.PledgeReceipt(ctx, pledgeReq("D-1", listing.DemoBank))
		wantState(t, err, "TRADING_CUSTODY")
		_, err = e.alpha.SplitReceipt(ctx, &receiptsv1.SplitReceiptRequest{ReceiptNumber: "D-1", Parts: []*receiptsv1.SplitPart{
			{PieceNumbers: []string{"D-1-B1"}}, {PieceNumbers: []string{"D-1-B2", "D-1-B3", "D-1-B4", "D-1-B5"}}}})
		wantState(t, err, "TRADING_CUSTODY")
		_, err = e.alpha.RequestCancellation(ctx, &receiptsv1.RequestCancellationRequest{ReceiptNumber: "D-1"})
		wantState(t, err, "TRADING_CUSTODY")
		// Someone else's receipt is not there.
		_, err = e.beta.WithdrawReceipt(ctx, &receiptsv1.WithdrawReceiptRequest{ReceiptNumber: "D-1"})
		wantNotFound(t, err, "D-1")

		// Reserved lots: the core refuses, nothing changes.
		if err := e.core.Reserve("D-1", "5"); err != nil {
			t.Fatal(err)
		}
		_, err = e.alpha.WithdrawReceipt(ctx, &receiptsv1.WithdrawReceiptRequest{ReceiptNumber: "D-1"})
		wantState(t, err, "reserved")
		if got := e.get(e.alpha, "D-1"); got.Receipt.Encumbrance != receiptsv1.Encumbrance_ENCUMBRANCE_TRADING_CUSTODY ||
			kinds(got.History) != "issued,deposited" || e.pending("D-1") != "" {
			t.Fatalf("after a refused withdrawal: %v", got)
		}
		if err := e.core.Reserve("D-1", "-5"); err != nil {
			t.Fatal(err)
		}
		w, err := e.alpha.WithdrawReceipt(ctx, &receiptsv1.WithdrawReceiptRequest{IdempotencyKey: "w-1", ReceiptNumber: "D-1"})
		if err != nil {
			t.Fatal(err)
		}
		if w.Receipt.Encumbrance != receiptsv1.Encumbrance_ENCUMBRANCE_NONE || kinds(e.get(e.alpha, "D-1").History) != "issued,deposited,withdrawn" {
			t.Fatalf("after withdrawal: %v", w.Receipt)
		}
		if _, _, ok := e.core.Pool("D-1"); ok {
			t.Fatal("the core still has the pool")
		}
		// Repeating the withdrawal with its key answers the same.
		again, err := e.alpha.WithdrawReceipt(ctx, &receiptsv1.WithdrawReceiptRequest{IdempotencyKey: "w-1", ReceiptNumber: "D-1"})
		if err != nil || !proto.Equal(again, w) {
			t.Fatalf("repeat = %v, %v", again, err)
		}
		// Not in custody any more: a plain withdrawal is refused by the state.
		_, err = e.alpha.WithdrawReceipt(ctx, &receiptsv1.WithdrawReceiptRequest{ReceiptNumber: "D-1"})
		wantState(t, err, "not in trading")
		// Every command is a new key: the refused withdrawal's is never reused.
		e.deposit(e.alpha, "D-1")
		if c := e.core.Credits(); len(c) != 2 || c[1].IdempotencyKey != "deposit/D-1/4" {
			t.Fatalf("credits %v", c)
		}
		if d := e.core.Debits(); len(d) != 2 || d[0].IdempotencyKey != "withdraw/D-1/2" || d[1].IdempotencyKey != "withdraw/D-1/3" {
			t.Fatalf("debits %v", d)
		}

		// Goods no active instrument takes are refused.
		other := cotton("D-2")
		other.Grade = "2129B"
		e.issue(other)
		_, err = e.alpha.DepositReceipt(ctx, &receiptsv1.DepositReceiptRequest{ReceiptNumber: "D-2"})
		wantState(t, err, "no active instrument")
		// Bonded rubber goes to the bonded instrument only.
		nr := &receiptsv1.Receipt{ReceiptNumber: "NR-2", Warehouse: "QD-FTZ-NR01", Commodity: "NR", Grade: "TSR20",
			ProductionDate: "2025", InspectionCertificate: "CIQ-NR", ExpiryDate: date(90), HolderParticipantId: listing.DemoMemberB,
			NetWeight: "21", Pieces: []*receiptsv1.Piece{{Number: "NR-2-P1", NetWeight: "21"}}}
		e.issue(nr)
		if r := e.deposit(e.beta, "NR-2"); len(r.Credited) != 1 || r.Credited[0].Symbol != "TSR20-QD-B" || r.Credited[0].Quantity != "20" {
			t.Fatalf("rubber credited %v", r.Credited)
		}
	})
}

func pledgeReq(number, bank string) *receiptsv1.PledgeReceiptRequest {
	return &receiptsv1.PledgeReceiptRequest{ReceiptNumber: number, Pledge: &receiptsv1.Pledge{BankParticipantId: bank,
		LoanReference: "LOAN-" + number, Amount: &typev1.Money{Currency: "CNY", Amount: "200000.5"}}}
}

func TestDepositWhenTheCoreFails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.issue(cotton("U-1"))
		e.issue(cotton("U-2"))
		e.issue(cotton("U-3"))
		// The core does not answer: the deposit stays pending, custody holds.
		e.core.FailNext(1, status.Error(codes.Unavailable, "core restarting"))
		req := &receiptsv1.DepositReceiptRequest{IdempotencyKey: "dep-1", ReceiptNumber: "U-1"}
		_, err := e.alpha.DepositReceipt(ctx, req)
		wantCode(t, err, codes.Unavailable)
		if e.pending("U-1") != "credit" {
			t.Fatal("deposit not pending")
		}
		_, err = e.alpha.PledgeReceipt(ctx, pledgeReq("U-1", listing.DemoBank))
		wantState(t, err, "waiting for the matching core")
		// Repeating the request completes it; the core saw one key twice.
		resp, err := e.alpha.DepositReceipt(ctx, req)
		if err != nil || resp.Receipt.Encumbrance != receiptsv1.Encumbrance_ENCUMBRANCE_TRADING_CUSTODY || len(resp.Credited) != 2 {
			t.Fatalf("resumed deposit: %v, %v", resp, err)
		}
		if c := e.core.Credits(); len(c) != 2 || c[0].IdempotencyKey != c[1].IdempotencyKey {
			t.Fatalf("credits %v", c)
		}
		if h := kinds(e.get(e.alpha, "U-1").History); h != "issued,deposited" {
			t.Fatalf("history %s", h)
		}

		// Without a key to resume by, the resender completes it.
		e.core.FailNext(1, status.Error(codes.Unavailable, "core restarting"))
		_, err = e.alpha.DepositReceipt(ctx, &receiptsv1.DepositReceiptRequest{ReceiptNumber: "U-2"})
		wantCode(t, err, codes.Unavailable)
		waitFor(t, "the resender to complete the deposit", func() bool { return e.pending("U-2") == "" })
		if who, weight, ok := e.core.Pool("U-2"); !ok || who != listing.DemoMemberA || weight != "20" {
			t.Fatalf("pool %v %v %v", who, weight, ok)
		}

		// The core refuses: custody ends, and the chain says why.
		e.core.FailNext(1, status.Error(codes.FailedPrecondition, "member suspended"))
		_, err = e.alpha.DepositReceipt(ctx, &receiptsv1.DepositReceiptRequest{ReceiptNumber: "U-3"})
		wantState(t, err, "member suspended")
		got := e.get(e.alpha, "U-3")
		if got.Receipt.Encumbrance != receiptsv1.Encumbrance_ENCUMBRANCE_NONE || kinds(got.History) != "issued,deposited,deposit_refused" {
			t.Fatalf("after refusal: %v", got)
		}
		e.deposit(e.alpha, "U-3") // and it can be deposited again
	})
}

func TestPledge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.issue(cotton("P-1"))
		for _, tc := range []struct {
			name  string
			f     func(r *receiptsv1.PledgeReceiptRequest)
			field string
		}{
			{"pledgee not a bank", func(r *receiptsv1.PledgeReceiptRequest) { r.Pledge.BankParticipantId = listing.DemoMemberB }, "pledge.bank_participant_id"},
			{"zero amount", func(r *receiptsv1.PledgeReceiptRequest) { r.Pledge.Amount.Amount = "0" }, "pledge.amount.amount"},
			{"fen of a fen", func(r *receiptsv1.PledgeReceiptRequest) { r.Pledge.Amount.Amount = "1.001" }, "pledge.amount.amount"},
			{"unknown currency", func(r *receiptsv1.PledgeReceiptRequest) { r.Pledge.Amount.Currency = "XXX" }, "pledge.amount.currency"},
			{"no loan reference", func(r *receiptsv1.PledgeReceiptRequest) { r.Pledge.LoanReference = "" }, "pledge.loan_reference"},
		} {
			req := pledgeReq("P-1", listing.DemoBank)
			tc.f(req)
			_, err := e.alpha.PledgeReceipt(ctx, req)
			wantField(t, err, tc.field)
		}
		_, err := e.beta.PledgeReceipt(ctx, pledgeReq("P-1", listing.DemoBank))
		wantNotFound(t, err, "P-1")

		resp, err := e.alpha.PledgeReceipt(ctx, pledgeReq("P-1", listing.DemoBank))
		if err != nil {
			t.Fatal(err)
		}
		if r := resp.Receipt; r.Encumbrance != receiptsv1.Encumbrance_ENCUMBRANCE_PLEDGED || r.Pledge.GetAmount().GetAmount() != "200000.50" ||
			r.Pledge.BankParticipantId != listing.DemoBank || r.Pledge.LoanReference != "LOAN-P-1" {
			t.Fatalf("pledged %v", r)
		}
		// The pledgee sees it; another bank does not.
		if got := e.get(e.bank, "P-1"); got.Receipt.HolderParticipantId != listing.DemoMemberA {
			t.Fatalf("bank sees %v", got.Receipt)
		}
		_, err = e.bank2.GetReceipt(ctx, &receiptsv1.GetReceiptRequest{ReceiptNumber: "P-1"})
		wantNotFound(t, err, "P-1")
		// Pledged: no second pledge, deposit, split, merge or cancellation.
		_, err = e.alpha.PledgeReceipt(ctx, pledgeReq("P-1", "BANK-TWO"))
		wantState(t, err, "PLEDGED to BANK-QDCB")
		_, err = e.alpha.DepositReceipt(ctx, &receiptsv1.DepositReceiptRequest{ReceiptNumber: "P-1"})
		wantState(t, err, "PLEDGED")
		_, err = e.alpha.WithdrawReceipt(ctx, &receiptsv1.WithdrawReceiptRequest{ReceiptNumber: "P-1"})
		wantState(t, err, "PLEDGED")
		_, err = e.alpha.SplitReceipt(ctx, &receiptsv1.SplitReceiptRequest{ReceiptNumber: "P-1", Parts: []*receiptsv1.SplitPart{
			{PieceNumbers: []string{"P-1-B1"}}, {PieceNumbers: []string{"P-1-B2", "P-1-B3", "P-1-B4"}}}})
		wantState(t, err, "PLEDGED")
		e.issue(cotton("P-2"))
		_, err = e.alpha.MergeReceipts(ctx, &receiptsv1.MergeReceiptsRequest{ReceiptNumbers: []string{"P-2", "P-1"}})
		wantState(t, err, "PLEDGED")
		_, err = e.alpha.RequestCancellation(ctx, &receiptsv1.RequestCancellationRequest{ReceiptNumber: "P-1"})
		wantState(t, err, "PLEDGED")
		// Release: only the pledgee.
		_, err = e.bank2.ReleasePledge(ctx, &receiptsv1.ReleasePledgeRequest{ReceiptNumber: "P-1"})
		wantNotFound(t, err, "P-1")
		_, err = e.alpha.ReleasePledge(ctx, &receiptsv1.ReleasePledgeRequest{ReceiptNumber: "P-1"})
		wantCode(t, err, codes.PermissionDenied)
		rel, err := e.bank.ReleasePledge(ctx, &receiptsv1.ReleasePledgeRequest{ReceiptNumber: "P-1"})
		if err != nil || rel.Receipt.Encumbrance != receiptsv1.Encumbrance_ENCUMBRANCE_NONE || rel.Receipt.Pledge != nil {
			t.Fatalf("release: %v, %v", rel, err)
		}
		// Released, the bank no longer sees it.
		_, err = e.bank.GetReceipt(ctx, &receiptsv1.GetReceiptRequest{ReceiptNumber: "P-1"})
		wantNotFound(t, err, "P-1")
		if h := kinds(e.get(e.alpha, "P-1").History); h != "issued,pledged,pledge_released" {
			t.Fatalf("history %s", h)
		}
		e.deposit(e.alpha, "P-1")
	})
}

func TestSplitAndMerge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.issue(cotton("S-1", "5", "5.01", "4.99", "5"))
		for _, tc := range []struct {
			name  string
			parts [][]string
			field string
		}{
			{"one part", [][]string{{"S-1-B1", "S-1-B2", "S-1-B3", "S-1-B4"}}, "parts"},
			{"foreign piece", [][]string{{"S-1-B1", "X-1"}, {"S-1-B2", "S-1-B3", "S-1-B4"}}, "parts[0].piece_numbers[1]"},
			{"piece twice", [][]string{{"S-1-B1", "S-1-B2"}, {"S-1-B2", "S-1-B3", "S-1-B4"}}, "parts[1].piece_numbers[0]"},
			{"piece left out", [][]string{{"S-1-B1"}, {"S-1-B2", "S-1-B3"}}, "parts"},
			{"empty part", [][]string{{"S-1-B1", "S-1-B2", "S-1-B3", "S-1-B4"}, {}}, "parts[1].piece_numbers"},
		} {
			req := &receiptsv1.SplitReceiptRequest{ReceiptNumber: "S-1"}
			for _, p := range tc.parts {
				req.Parts = append(req.Parts, &receiptsv1.SplitPart{PieceNumbers: p})
			}
			_, err := e.alpha.SplitReceipt(ctx, req)
			wantField(t, err, tc.field)
		}
		_, err := e.beta.SplitReceipt(ctx, &receiptsv1.SplitReceiptRequest{ReceiptNumber: "S-1", Parts: []*receiptsv1.SplitPart{
			{PieceNumbers: []string{"S-1-B1"}}, {PieceNumbers: []string{"S-1-B2", "S-1-B3", "S-1-B4"}}}})
		wantNotFound(t, err, "S-1")

		split, err := e.alpha.SplitReceipt(ctx, &receiptsv1.SplitReceiptRequest{ReceiptNumber: "S-1", Parts: []*receiptsv1.SplitPart{
			{PieceNumbers: []string{"S-1-B3", "S-1-B1"}}, {PieceNumbers: []string{"S-1-B2", "S-1-B4"}}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(split.Receipts) != 2 || split.Receipts[0].ReceiptNumber != "S-1.1" || split.Receipts[0].NetWeight != "9.99" ||
			split.Receipts[1].ReceiptNumber != "S-1.2" || split.Receipts[1].NetWeight != "10.01" ||
			split.Receipts[0].Pieces[0].Number != "S-1-B1" || split.Receipts[0].HolderParticipantId != listing.DemoMemberA {
			t.Fatalf("split into %v", split.Receipts)
		}
		parent := e.get(e.alpha, "S-1")
		if parent.Receipt.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_SUPERSEDED || kinds(parent.History) != "issued,split" {
			t.Fatalf("parent %v", parent)
		}
		child := e.get(e.alpha, "S-1.1")
		if kinds(child.History) != "split_from" || !strings.Contains(child.History[0].Payload, parent.History[0].Hash) {
			t.Fatalf("child history %v", child.History)
		}
		_, err = e.alpha.SplitReceipt(ctx, &receiptsv1.SplitReceiptRequest{ReceiptNumber: "S-1", Parts: []*receiptsv1.SplitPart{
			{PieceNumbers: []string{"S-1-B1"}}, {PieceNumbers: []string{"S-1-B2", "S-1-B3", "S-1-B4"}}}})
		wantState(t, err, "SUPERSEDED")
		// The pieces are still claimed, now by the children.
		r := cotton("S-9")
		r.Pieces[0].Number = "S-1-B4"
		_, err = e.wh.IssueReceipt(ctx, &receiptsv1.IssueReceiptRequest{Receipt: r})
		wantCode(t, err, codes.AlreadyExists)

		// Merge: the same goods only, all the caller's, none encumbered.
		diff := cotton("S-2")
		diff.Grade = "2129B"
		e.issue(diff)
		_, err = e.alpha.MergeReceipts(ctx, &receiptsv1.MergeReceiptsRequest{ReceiptNumbers: []string{"S-1.1", "S-2"}})
		wantField(t, err, "receipt_numbers[1]")
		beta := cotton("S-3")
		beta.HolderParticipantId = listing.DemoMemberB
		e.issue(beta)
		_, err = e.alpha.MergeReceipts(ctx, &receiptsv1.MergeReceiptsRequest{ReceiptNumbers: []string{"S-1.1", "S-3"}})
		wantNotFound(t, err, "S-3")
		_, err = e.alpha.MergeReceipts(ctx, &receiptsv1.MergeReceiptsRequest{ReceiptNumbers: []string{"S-1.1", "S-1.1"}})
		wantField(t, err, "receipt_numbers[1]")
		e.issue(cotton("S-4", "1"))
		merged, err := e.alpha.MergeReceipts(ctx, &receiptsv1.MergeReceiptsRequest{ReceiptNumbers: []string{"S-4", "S-1.2", "S-1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		m := merged.Receipt
		if m.ReceiptNumber != "S-1.1.1" || m.NetWeight != "21" || len(m.Pieces) != 5 || m.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE {
			t.Fatalf("merged %v", m)
		}
		for _, n := range []string{"S-1.1", "S-1.2", "S-4"} {
			if got := e.get(e.alpha, n); got.Receipt.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_SUPERSEDED {
				t.Fatalf("%s after merge: %v", n, got.Receipt.Status)
			}
		}
		// Weight is conserved in the stock report: S-1.1.1 (21), S-2 (20), S-3 (20).
		rep, err := e.operator.GetStockReport(ctx, &receiptsv1.GetStockReportRequest{Commodity: "CF"})
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range rep.Lines {
			lines = append(lines, fmt.Sprintf("%s/%s/%s:%d:%s", l.Warehouse, l.Commodity, l.Grade, l.Receipts, l.NetWeight))
		}
		if s := strings.Join(lines, " "); s != "QD-CF01/CF/2129B:1:20 QD-CF01/CF/3128B:2:41" {
			t.Fatalf("stock report %s", s)
		}
		if n := e.count(`SELECT COUNT(*) FROM live_pieces`); n != 13 {
			t.Fatalf("%d live pieces, want 13", n)
		}
	})
}

func TestCancellationAndInspection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.issue(cotton("C-1"))
		_, err := e.wh.ConfirmLoadOut(ctx, &receiptsv1.ConfirmLoadOutRequest{ReceiptNumber: "C-1"})
		wantState(t, err, "LIVE")
		insp, err := e.wh.ReportInspection(ctx, &receiptsv1.ReportInspectionRequest{ReceiptNumber: "C-1", InspectionCertificate: "CIQ-2026-7"})
		if err != nil || insp.Receipt.InspectionCertificate != "CIQ-2026-7" {
			t.Fatalf("inspection %v, %v", insp, err)
		}
		_, err = e.wh2.ReportInspection(ctx, &receiptsv1.ReportInspectionRequest{ReceiptNumber: "C-1", InspectionCertificate: "X"})
		wantNotFound(t, err, "C-1")
		_, err = e.beta.RequestCancellation(ctx, &receiptsv1.RequestCancellationRequest{ReceiptNumber: "C-1"})
		wantNotFound(t, err, "C-1")
		req, err := e.alpha.RequestCancellation(ctx, &receiptsv1.RequestCancellationRequest{ReceiptNumber: "C-1"})
		if err != nil || req.Receipt.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_CANCELLATION_REQUESTED {
			t.Fatalf("request: %v, %v", req, err)
		}
		_, err = e.alpha.DepositReceipt(ctx, &receiptsv1.DepositReceiptRequest{ReceiptNumber: "C-1"})
		wantState(t, err, "CANCELLATION_REQUESTED")
		_, err = e.alpha.PledgeReceipt(ctx, pledgeReq("C-1", listing.DemoBank))
		wantState(t, err, "CANCELLATION_REQUESTED")
		_, err = e.wh2.ConfirmLoadOut(ctx, &receiptsv1.ConfirmLoadOutRequest{ReceiptNumber: "C-1"})
		wantNotFound(t, err, "C-1")
		done, err := e.wh.ConfirmLoadOut(ctx, &receiptsv1.ConfirmLoadOutRequest{ReceiptNumber: "C-1"})
		if err != nil || done.Receipt.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_CANCELLED {
			t.Fatalf("load-out: %v, %v", done, err)
		}
		_, err = e.wh.ReportInspection(ctx, &receiptsv1.ReportInspectionRequest{ReceiptNumber: "C-1", InspectionCertificate: "Y"})
		wantState(t, err, "CANCELLED")
		if h := kinds(e.get(e.alpha, "C-1").History); h != "issued,inspection_reported,cancellation_requested,loaded_out" {
			t.Fatalf("history %s", h)
		}
		// The goods left, so their bale numbers may be issued again.
		again := cotton("C-2")
		for i, p := range again.Pieces {
			p.Number = fmt.Sprintf("C-1-B%d", i+1)
		}
		e.issue(again)
		rep, err := e.alpha.GetStockReport(ctx, &receiptsv1.GetStockReportRequest{})
		if err != nil || len(rep.Lines) != 1 || rep.Lines[0].Receipts != 1 || rep.Lines[0].NetWeight != "20" {
			t.Fatalf("stock %v, %v", rep, err)
		}
	})
}

func TestExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		r := cotton("E-1")
		r.ExpiryDate = date(2)
		e.issue(r)
		e.issue(cotton("E-2"))
		e.clock.Advance(4 * 24 * time.Hour)
		got := e.get(e.alpha, "E-1")
		if got.Receipt.Status != receiptsv1.ReceiptStatus_RECEIPT_STATUS_EXPIRED {
			t.Fatalf("status %v", got.Receipt.Status)
		}
		_, err := e.alpha.DepositReceipt(ctx, &receiptsv1.DepositReceiptRequest{ReceiptNumber: "E-1"})
		wantState(t, err, "EXPIRED")
		if st := status.Convert(err); !strings.Contains(st.Message(), r.ExpiryDate) {
			t.Fatalf("message %q", st.Message())
		}
		_, err = e.alpha.PledgeReceipt(ctx, pledgeReq("E-1", listing.DemoBank))
		wantState(t, err, "EXPIRED")
		list := func(s receiptsv1.ReceiptStatus) string {
			resp, err := e.alpha.ListReceipts(ctx, &receiptsv1.ListReceiptsRequest{Status: s})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range resp.Receipts {
				out = append(out, r.ReceiptNumber+":"+r.Status.String())
			}
			return strings.Join(out, ",")
		}
		if l := list(receiptsv1.ReceiptStatus_RECEIPT_STATUS_EXPIRED); l != "E-1:RECEIPT_STATUS_EXPIRED" {
			t.Fatalf("expired list %s", l)
		}
		if l := list(receiptsv1.ReceiptStatus_RECEIPT_STATUS_LIVE); l != "E-2:RECEIPT_STATUS_LIVE" {
			t.Fatalf("live list %s", l)
		}
		// Taking the goods out is still possible.
		if _, err := e.alpha.RequestCancellation(ctx, &receiptsv1.RequestCancellationRequest{ReceiptNumber: "E-1"}); err != nil {
			t.Fatal(err)
		}
		// The chain never stored EXPIRED, and the proof still verifies.
		v, err := e.alpha.VerifyReceipt(ctx, &receiptsv1.VerifyReceiptRequest{ReceiptNumber: "E-2"})
		if err != nil {
			t.Fatal(err)
		}
		if err := receipts.VerifyProof(v, e.root().Hash); err != nil {
			t.Fatal(err)
		}
	})
}

func TestListingAndVisibility(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		for i := 1; i <= 5; i++ {
			e.issue(cotton(fmt.Sprintf("L-%d", i)))
		}
		b := cotton("L-6")
		b.HolderParticipantId = listing.DemoMemberB
		e.issue(b)
		if _, err := e.alpha.PledgeReceipt(ctx, pledgeReq("L-2", listing.DemoBank)); err != nil {
			t.Fatal(err)
		}
		page := func(c receiptsv1.ReceiptsServiceClient, req *receiptsv1.ListReceiptsRequest) []string {
			var out []string
			for i := 0; i < 10; i++ {
				resp, err := c.ListReceipts(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range resp.Receipts {
					out = append(out, r.ReceiptNumber)
				}
				if req.PageToken = resp.NextPageToken; req.PageToken == "" {
					return out
				}
			}
			t.Fatal("paging does not end")
			return nil
		}
		for _, tc := range []struct {
			name string
			c    receiptsv1.ReceiptsServiceClient
			req  *receiptsv1.ListReceiptsRequest
			want string
		}{
			{"member pages", e.alpha, &receiptsv1.ListReceiptsRequest{PageSize: 2}, "L-1 L-2 L-3 L-4 L-5"},
			{"member asks for another's", e.alpha, &receiptsv1.ListReceiptsRequest{HolderParticipantId: listing.DemoMemberB}, ""},
			{"other member", e.beta, &receiptsv1.ListReceiptsRequest{}, "L-6"},
			{"warehouse", e.wh, &receiptsv1.ListReceiptsRequest{PageSize: 4}, "L-1 L-2 L-3 L-4 L-5 L-6"},
			{"other warehouse", e.wh2, &receiptsv1.ListReceiptsRequest{}, ""},
			{"bank", e.bank, &receiptsv1.ListReceiptsRequest{}, "L-2"},
			{"operator by holder", e.operator, &receiptsv1.ListReceiptsRequest{HolderParticipantId: listing.DemoMemberB}, "L-6"},
			{"operator by commodity", e.operator, &receiptsv1.ListReceiptsRequest{Commodity: "NR"}, ""},
			{"operator by warehouse", e.operator, &receiptsv1.ListReceiptsRequest{Warehouse: "QD-CF01", PageSize: 3}, "L-1 L-2 L-3 L-4 L-5 L-6"},
			{"by status", e.operator, &receiptsv1.ListReceiptsRequest{Status: receiptsv1.ReceiptStatus_RECEIPT_STATUS_CANCELLED}, ""},
		} {
			if got := strings.Join(page(tc.c, tc.req), " "); got != tc.want {
				t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
			}
		}
		_, err := e.alpha.ListReceipts(ctx, &receiptsv1.ListReceiptsRequest{PageToken: "!!"})
		wantField(t, err, "page_token")
		_, err = e.alpha.ListReceipts(ctx, &receiptsv1.ListReceiptsRequest{PageSize: -1})
		wantField(t, err, "page_size")
		// The list shows each receipt as GetReceipt does, head hash included.
		resp, err := e.alpha.ListReceipts(ctx, &receiptsv1.ListReceiptsRequest{PageSize: 1})
		if err != nil || !proto.Equal(resp.Receipts[0], e.get(e.alpha, "L-1").Receipt) {
			t.Fatalf("list %v, %v", resp, err)
		}
	})
}

func TestMalformedNumbers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		_, err := e.alpha.GetReceipt(ctx, &receiptsv1.GetReceiptRequest{ReceiptNumber: "no such; drop"})
		wantField(t, err, "receipt_number")
		_, err = e.alpha.DepositReceipt(ctx, &receiptsv1.DepositReceiptRequest{ReceiptNumber: ""})
		wantField(t, err, "receipt_number")
		e.issue(cotton("M-1"))
		_, err = e.alpha.DepositReceipt(ctx, &receiptsv1.DepositReceiptRequest{ReceiptNumber: "M-1", IdempotencyKey: strings.Repeat("k", 200)})
		wantField(t, err, "idempotency_key")
		_, err = e.alpha.PledgeReceipt(ctx, &receiptsv1.PledgeReceiptRequest{ReceiptNumber: "M-1"})
		wantField(t, err, "pledge")
	})
}
