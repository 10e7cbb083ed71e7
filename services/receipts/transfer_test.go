package receipts_test

import (
	"strings"
	"testing"

	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
)

func pieceList(r *receiptsv1.Receipt) string {
	var out []string
	for _, p := range r.Pieces {
		out = append(out, p.Number)
	}
	return strings.Join(out, ",")
}

type delivery struct {
	to                           string
	allocated, delivered, diff   int64
	within                       bool
	priceCurrency, price, seller string
}

func (e *env) delivery(tradeID int64, from string) delivery {
	e.t.Helper()
	var d delivery
	if err := e.db.QueryRowContext(ctx, `SELECT to_receipt, allocated, delivered, difference, within_tolerance, price_currency, price, seller
		FROM deliveries WHERE trade_id = $1 AND from_receipt = $2`, tradeID, from).
		Scan(&d.to, &d.allocated, &d.delivered, &d.diff, &d.within, &d.priceCurrency, &d.price, &d.seller); err != nil {
		e.t.Fatalf("delivery %d/%s: %v", tradeID, from, err)
	}
	return d
}

func TestTitleTransferOnSettlement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.issue(cotton("T-1", "5", "5.1", "4.9", "5.05", "4.95", "5")) // 30 t
		e.deposit(e.alpha, "T-1")

		// 10 t of it: bales in number order until 10 t is reached; B1+B2 =
		// 10.1 t is closer than B1 alone. 0.1 t over, within 2%.
		e.trade(1, "10", "T-1", "10")
		buyer := e.get(e.beta, "T-1.1")
		if r := buyer.Receipt; r.HolderParticipantId != listing.DemoMemberB || r.NetWeight != "10.1" || pieceList(r) != "T-1-B1,T-1-B2" ||
			r.Encumbrance != receiptsv1.Encumbrance_ENCUMBRANCE_TRADING_CUSTODY || kinds(buyer.History) != "delivered_from" {
			t.Fatalf("buyer's receipt %v", buyer)
		}
		if !strings.Contains(buyer.History[0].Payload, `"difference":"0.1"`) || !strings.Contains(buyer.History[0].Payload, `"trade_id":1`) {
			t.Fatalf("delivery event %s", buyer.History[0].Payload)
		}
		seller := e.get(e.alpha, "T-1")
		if r := seller.Receipt; r.NetWeight != "19.9" || pieceList(r) != "T-1-B3,T-1-B4,T-1-B5,T-1-B6" || r.HolderParticipantId != listing.DemoMemberA ||
			kinds(seller.History) != "issued,deposited,delivered_part" {
			t.Fatalf("seller's receipt %v", seller)
		}
		_, err := e.alpha.GetReceipt(ctx, &receiptsv1.GetReceiptRequest{ReceiptNumber: "T-1.1"})
		wantNotFound(t, err, "T-1.1")
		if d := e.delivery(1, "T-1"); d.to != "T-1.1" || d.allocated != 10000 || d.delivered != 10100 || d.diff != 100 || !d.within ||
			d.priceCurrency != "CNY" || d.price != "15235" || d.seller != listing.DemoMemberA {
			t.Fatalf("delivery %+v", d)
		}
		// The buyer's goods become a pool of its own at the core.
		waitFor(t, "the buyer's credit", func() bool { return e.pending("T-1.1") == "" })
		if who, w, ok := e.core.Pool("T-1.1"); !ok || who != listing.DemoMemberB || w != "10.1" {
			t.Fatalf("buyer pool %s %s %v", who, w, ok)
		}

		// The core drops the subscription: the consumer resubscribes from its
		// position and carries on.
		e.core.Disconnect()
		// 5 t: B3 (4.9 t) alone is closer than B3+B4; 0.1 t short, exactly 2%.
		e.trade(2, "5", "T-1", "5")
		if d := e.delivery(2, "T-1"); d.to != "T-1.2" || d.delivered != 4900 || d.diff != -100 || !d.within {
			t.Fatalf("delivery %+v", d)
		}
		// The last 15 t empties the seller's pool: the whole receipt moves, number and all.
		e.trade(3, "15", "T-1", "15")
		whole := e.get(e.beta, "T-1")
		if r := whole.Receipt; r.HolderParticipantId != listing.DemoMemberB || r.NetWeight != "15" || len(r.Pieces) != 3 ||
			kinds(whole.History) != "issued,deposited,delivered_part,delivered_part,transferred" {
			t.Fatalf("whole transfer %v", whole)
		}
		waitFor(t, "the buyer's credit", func() bool { return e.pending("T-1") == "" })
		if who, w, ok := e.core.Pool("T-1"); !ok || who != listing.DemoMemberB || w != "15" {
			t.Fatalf("buyer pool for T-1: %s %s %v", who, w, ok)
		}
		found := false
		for _, c := range e.core.Credits() {
			found = found || c.IdempotencyKey == "deposit/T-1/2" && c.ParticipantId == listing.DemoMemberB
		}
		if !found {
			t.Fatalf("no credit deposit/T-1/2 for the buyer: %v", e.core.Credits())
		}
		list, err := e.alpha.ListReceipts(ctx, &receiptsv1.ListReceiptsRequest{})
		if err != nil || len(list.Receipts) != 0 {
			t.Fatalf("seller still lists %v, %v", list, err)
		}
		rep, err := e.operator.GetStockReport(ctx, &receiptsv1.GetStockReportRequest{})
		if err != nil || len(rep.Lines) != 1 || rep.Lines[0].NetWeight != "30" || rep.Lines[0].Receipts != 3 {
			t.Fatalf("weight not conserved: %v, %v", rep, err)
		}

		// Redelivery: the core sends everything again; nothing changes.
		root := e.root()
		marker := int64(1000)
		e.core.Redeliver(0, e.core.LogLen())
		e.trade(marker, "0") // in order after the redelivered events, so they were seen
		if r := e.root(); r.Index != root.Index || r.Hash != root.Hash {
			t.Fatalf("redelivery moved the root from %v to %v", root, r)
		}
		// A restart, against a core that replays its whole log whatever is asked.
		e.stopRun()
		e.core.ReplayAll = true
		e.stopRun = e.run(e.newSrv(e.core))
		marker++
		e.trade(marker, "0")
		if r := e.root(); r.Index != root.Index || r.Hash != root.Hash {
			t.Fatalf("restart moved the root from %v to %v", root, r)
		}
		if n := e.count(`SELECT COUNT(*) FROM deliveries`); n != 3 {
			t.Fatalf("%d deliveries", n)
		}
		if n := e.count(`SELECT COUNT(*) FROM breaks`); n != 0 {
			t.Fatalf("%d breaks", n)
		}
	})
}

func TestDeliveryExceptions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		// Tank lots too big to split: the delivery stands, flagged out of tolerance.
		lco := &receiptsv1.Receipt{ReceiptNumber: "O-1", Warehouse: "QD-TANK01", Commodity: "LCO", Grade: "S1200", ProductionDate: "2026-01-05",
			InspectionCertificate: "CIQ-LCO", ExpiryDate: date(60), HolderParticipantId: listing.DemoMemberA, NetWeight: "60",
			Pieces: []*receiptsv1.Piece{{Number: "TK1-LOT1", NetWeight: "30"}, {Number: "TK1-LOT2", NetWeight: "30"}}}
		e.issue(lco)
		if r := e.deposit(e.alpha, "O-1"); len(r.Credited) != 1 || r.Credited[0].Symbol != "LCO-QD" || r.Credited[0].Quantity != "60" {
			t.Fatalf("credited %v", r.Credited)
		}
		seq := e.core.Trade(&tradingv1.TradeEvent{TradeId: 7, Symbol: "LCO-QD", Quantity: "10", Price: &typev1.Money{Currency: "CNY", Amount: "5600"},
			SellerParticipantId: listing.DemoMemberA, BuyerParticipantId: listing.DemoMemberB,
			Allocations: []*tradingv1.ReceiptAllocation{{ReceiptNumber: "O-1", Weight: "10"}}})
		waitFor(t, "the trade", func() bool { return e.position() >= seq })
		if d := e.delivery(7, "O-1"); d.to != "O-1.1" || d.delivered != 30000 || d.diff != 20000 || d.within {
			t.Fatalf("delivery %+v", d)
		}
		if p := e.get(e.beta, "O-1.1").History[0].Payload; !strings.Contains(p, `"within_tolerance":false`) {
			t.Fatalf("event %s", p)
		}

		// Allocations the registry cannot honour are recorded, not applied.
		e.issue(cotton("X-1")) // alpha's, not deposited
		betas := cotton("X-2")
		betas.HolderParticipantId = listing.DemoMemberB
		e.issue(betas)
		e.deposit(e.beta, "X-2") // deposited, but not the seller's
		root := e.root()
		e.trade(8, "30", "X-1", "10", "X-2", "10", "NOPE-1", "10")
		if r := e.root(); r.Index != root.Index {
			t.Fatalf("a refused allocation changed the chain: %v -> %v", root, r)
		}
		rows, err := e.db.QueryContext(ctx, `SELECT receipt_number, reason FROM breaks WHERE trade_id = 8 ORDER BY receipt_number`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var n, reason string
			if err := rows.Scan(&n, &reason); err != nil {
				t.Fatal(err)
			}
			got = append(got, n+": "+reason)
		}
		if len(got) != 3 || !strings.Contains(got[0], "NOPE-1: receipt not found") || !strings.Contains(got[1], "X-1: receipt is LIVE and unencumbered") ||
			!strings.Contains(got[2], "X-2: receipt is held by M-BETA") {
			t.Fatalf("breaks %q", got)
		}
		// The same receipt sold twice by a faulty core: the second sale finds it gone.
		e.issue(cotton("X-3"))
		e.deposit(e.alpha, "X-3")
		e.trade(9, "20", "X-3", "20")
		e.trade(10, "20", "X-3", "20")
		if e.get(e.beta, "X-3").Receipt.HolderParticipantId != listing.DemoMemberB {
			t.Fatal("first sale not delivered")
		}
		if n := e.count(`SELECT COUNT(*) FROM breaks WHERE trade_id = 10`); n != 1 {
			t.Fatalf("second sale: %d breaks", n)
		}
		if n := e.count(`SELECT COUNT(*) FROM deliveries WHERE from_receipt = 'X-3'`); n != 1 {
			t.Fatalf("X-3 delivered %d times", n)
		}
	})
}

// A withdrawal the core sequenced after a trade is applied after the trade's
// delivery, however the answers race.
func TestWithdrawAfterPartialSale(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.issue(cotton("W-1", "5", "5", "5", "5"))
		e.deposit(e.alpha, "W-1")
		e.trade(1, "5", "W-1", "5")
		resp, err := e.alpha.WithdrawReceipt(ctx, &receiptsv1.WithdrawReceiptRequest{ReceiptNumber: "W-1"})
		if err != nil {
			t.Fatal(err)
		}
		if r := resp.Receipt; r.Encumbrance != receiptsv1.Encumbrance_ENCUMBRANCE_NONE || r.NetWeight != "15" {
			t.Fatalf("withdrawn %v", r)
		}
		if h := kinds(e.get(e.alpha, "W-1").History); h != "issued,deposited,delivered_part,withdrawn" {
			t.Fatalf("history %s", h)
		}
	})
}
