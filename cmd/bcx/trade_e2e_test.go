package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	marketdatav1 "github.com/bcx-exchange/bcx/proto/bcx/marketdata/v1"
	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
)

// devSession is a running `bcx dev` with a connection per demo principal.
type devSession struct {
	t                                    *testing.T
	ctx                                  context.Context
	ops, buyerConn, sellerConn, wh, bank *grpc.ClientConn
	buyer, seller                        string
}

func startDevSession(t *testing.T, extra ...string) *devSession {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping end-to-end test in -short mode")
	}
	bin := buildBinary(t)
	dataDir := t.TempDir()
	addr, _, stop := startDev(t, bin, dataDir, extra...)
	t.Cleanup(stop)
	raw, err := os.ReadFile(filepath.Join(dataDir, credentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	var creds listing.DevCredentials
	if err := json.Unmarshal(raw, &creds); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &devSession{t: t, ctx: ctx, ops: dial(t, addr, creds.Operator.Token), buyerConn: dial(t, addr, creds.Members[0].Token),
		sellerConn: dial(t, addr, creds.Members[1].Token), wh: dial(t, addr, creds.Warehouse.Token), bank: dial(t, addr, creds.Bank.Token),
		buyer: creds.Members[0].ParticipantID, seller: creds.Members[1].ParticipantID}
}

func (d *devSession) must(what string, err error) {
	d.t.Helper()
	if err != nil {
		d.t.Fatalf("%s: %v", what, err)
	}
}

// open waits for the schedule to have set the instrument's phase, then
// opens continuous trading as the operator, whatever the clock says.
func (d *devSession) open(symbol string) {
	d.t.Helper()
	md := marketdatav1.NewMarketDataServiceClient(d.buyerConn)
	eventually(d.t, "instrument phase from the schedule", func() error {
		tk, err := md.GetTicker(d.ctx, &marketdatav1.GetTickerRequest{Symbol: symbol})
		if err != nil {
			return err
		}
		if tk.Ticker.Phase == tradingv1.InstrumentPhase_INSTRUMENT_PHASE_UNSPECIFIED {
			return fmt.Errorf("phase not set yet")
		}
		return nil
	})
	_, err := tradingv1.NewCoreServiceClient(d.ops).SetInstrumentPhase(d.ctx, &tradingv1.SetInstrumentPhaseRequest{
		IdempotencyKey: "e2e-open-" + symbol, Symbol: symbol, Phase: tradingv1.InstrumentPhase_INSTRUMENT_PHASE_CONTINUOUS, Reason: "e2e"})
	d.must("open "+symbol, err)
}

// eventually retries fn until it succeeds or the deadline passes.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDevTradeEndToEnd follows one cotton trade through the real binary, from
// the warehouse's receipt to settlement: the walk the README shows with
// grpcurl.
func TestDevTradeEndToEnd(t *testing.T) {
	d := startDevSession(t)
	ctx, opsConn, buyerConn, sellerConn, whConn, bankConn := d.ctx, d.ops, d.buyerConn, d.sellerConn, d.wh, d.bank
	buyer, seller, must := d.buyer, d.seller, d.must
	var err error

	// 1. The warehouse issues a 40 t cotton receipt (eight bale lots of about 5 t) to the seller.
	var pieces []*receiptsv1.Piece
	for i, w := range []string{"5.040", "4.980", "5.000", "5.010", "4.970", "5.000", "5.000", "5.000"} {
		pieces = append(pieces, &receiptsv1.Piece{Number: fmt.Sprintf("QD-B%04d", i+1), NetWeight: w})
	}
	issueDate := time.Now().In(time.UTC)
	issued, err := receiptsv1.NewReceiptsServiceClient(whConn).IssueReceipt(ctx, &receiptsv1.IssueReceiptRequest{
		IdempotencyKey: "e2e-issue-1",
		Receipt: &receiptsv1.Receipt{ReceiptNumber: "CF-QD-E2E-0001", Warehouse: "QD-CF01", Commodity: "CF", Grade: "3128B",
			Brand: "XJ", Origin: "Xinjiang", ProductionDate: "2026", CustomsStatus: typev1.CustomsStatus_CUSTOMS_STATUS_DUTY_PAID,
			NetWeight: "40.000", Pieces: pieces, InspectionCertificate: "CIQ-2026-0001",
			StoragePaidThrough: issueDate.AddDate(0, 3, 0).Format(time.DateOnly), ExpiryDate: issueDate.AddDate(1, 0, 0).Format(time.DateOnly),
			HolderParticipantId: seller},
	})
	must("issue receipt", err)

	// 2. The seller deposits it into trading: the core credits its weight.
	_, err = receiptsv1.NewReceiptsServiceClient(sellerConn).DepositReceipt(ctx, &receiptsv1.DepositReceiptRequest{
		IdempotencyKey: "e2e-deposit-1", ReceiptNumber: issued.Receipt.ReceiptNumber})
	must("deposit receipt", err)

	// 3. The clearing bank reports the buyer's deposit of CNY 1,000,000 (twice: credited once).
	bank := settlementv1.NewBankServiceClient(bankConn)
	for i := 0; i < 2; i++ {
		_, err = bank.PostDepositNotice(ctx, &settlementv1.PostDepositNoticeRequest{BankReference: "QDCB-DEP-0001",
			ParticipantId: buyer, Amount: &typev1.Money{Currency: "CNY", Amount: "1000000.00"}, EndToEndId: "E2E-DEP-0001",
			ValueDate: time.Now().Format(time.DateOnly)})
		must("deposit notice", err)
	}
	buyerTrading, sellerTrading := tradingv1.NewTradingServiceClient(buyerConn), tradingv1.NewTradingServiceClient(sellerConn)
	eventually(t, "buyer's funds reach the core", func() error {
		b, err := buyerTrading.GetBalances(ctx, &tradingv1.GetBalancesRequest{})
		if err != nil {
			return err
		}
		for _, f := range b.Funds {
			if f.Currency == "CNY" && f.Total == "1000000.00" {
				return nil
			}
		}
		return fmt.Errorf("buyer funds %v", b.Funds)
	})
	eventually(t, "seller's position reaches the core", func() error {
		b, err := sellerTrading.GetBalances(ctx, &tradingv1.GetBalancesRequest{})
		if err != nil {
			return err
		}
		for _, p := range b.Positions {
			if p.Symbol == "CF3128B-QD" && p.Available == "40" {
				return nil
			}
		}
		return fmt.Errorf("seller positions %v", b.Positions)
	})

	// 4. The operator sets fees and opens continuous trading (whatever the clock says).
	_, err = settlementv1.NewSettlementAdminServiceClient(opsConn).SetFeeSchedule(ctx, &settlementv1.SetFeeScheduleRequest{
		IdempotencyKey: "e2e-fees-1", Schedule: &settlementv1.FeeSchedule{Symbol: "CF3128B-QD",
			Buyer:  &typev1.FeeRule{Basis: typev1.FeeBasis_FEE_BASIS_RATE, Value: "0.0002", Minimum: &typev1.Money{Currency: "CNY", Amount: "5.00"}},
			Seller: &typev1.FeeRule{Basis: typev1.FeeBasis_FEE_BASIS_PER_LOT, Value: "2.50", Minimum: &typev1.Money{Currency: "CNY", Amount: "0.00"}}}})
	must("fee schedule", err)
	d.open("CF3128B-QD")
	time.Sleep(1500 * time.Millisecond) // a schedule tick passes; the operator's phase must hold

	// 5. The seller offers 10 t at 15,000 CNY/t; the buyer takes it. Bad input is refused first.
	_, err = buyerTrading.PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: "bad-1", Symbol: "CF3128B-QD", Side: typev1.Side_SIDE_BUY,
		OrderType: tradingv1.OrderType_ORDER_TYPE_LIMIT, TimeInForce: tradingv1.TimeInForce_TIME_IN_FORCE_DAY,
		Price: &typev1.Money{Currency: "CNY", Amount: "15002"}, Quantity: "10"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("price off tick: %v", err)
	}
	var sell, buy *tradingv1.PlaceOrderResponse
	eventually(t, "seller's order accepted", func() error {
		sell, err = sellerTrading.PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: "s-1", Symbol: "CF3128B-QD", Side: typev1.Side_SIDE_SELL,
			OrderType: tradingv1.OrderType_ORDER_TYPE_LIMIT, TimeInForce: tradingv1.TimeInForce_TIME_IN_FORCE_GOOD_TILL_CANCELLED,
			Price: &typev1.Money{Currency: "CNY", Amount: "15000"}, Quantity: "10"})
		return err
	})
	buy, err = buyerTrading.PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: "b-1", Symbol: "CF3128B-QD", Side: typev1.Side_SIDE_BUY,
		OrderType: tradingv1.OrderType_ORDER_TYPE_LIMIT, TimeInForce: tradingv1.TimeInForce_TIME_IN_FORCE_DAY,
		Price: &typev1.Money{Currency: "CNY", Amount: "15005"}, Quantity: "10"})
	must("buy", err)
	if len(buy.Executions) != 1 || buy.Executions[0].Price.Amount != "15000.00" || buy.Executions[0].Quantity != "10" {
		t.Fatalf("buy executions = %v (sell order %v)", buy.Executions, sell.Order)
	}
	tradeID := buy.Executions[0].TradeId
	// Each side lists its execution of the day.
	for _, c := range []tradingv1.TradingServiceClient{buyerTrading, sellerTrading} {
		l, err := c.ListExecutions(ctx, &tradingv1.ListExecutionsRequest{Symbol: "CF3128B-QD"})
		must("list executions", err)
		if len(l.Executions) != 1 || l.Executions[0].TradeId != tradeID {
			t.Fatalf("executions listed: %v", l.Executions)
		}
	}

	// 6. Settlement books the cash leg, receipts transfers title, the trade settles.
	members := settlementv1.NewSettlementServiceClient(buyerConn)
	var ts *settlementv1.TradeSettlement
	eventually(t, "trade settles", func() error {
		r, err := members.GetTradeSettlement(ctx, &settlementv1.GetTradeSettlementRequest{TradeId: tradeID})
		if err != nil {
			return err
		}
		ts = r.Settlement
		if ts.Status != settlementv1.SettlementStatus_SETTLEMENT_STATUS_SETTLED {
			return fmt.Errorf("settlement %v", ts)
		}
		return nil
	})
	// 150,000 principal; buyer fee max(0.02% = 30.00, 5.00) = 30.00; seller 2 lots x 2.50 = 5.00.
	if ts.Principal.Amount != "150000.00" || ts.BuyerFee.Amount != "30.00" || ts.SellerFee.Amount != "5.00" {
		t.Fatalf("settlement amounts: %v", ts)
	}
	held, err := receiptsv1.NewReceiptsServiceClient(buyerConn).ListReceipts(ctx, &receiptsv1.ListReceiptsRequest{HolderParticipantId: buyer})
	must("buyer's receipts", err)
	// 10 t traded; the first two bale lots weigh 10.020 t: 0.020 t over, settled
	// in cash at the trade price (溢短): 0.020 x 15,000 = 300.00.
	if len(held.Receipts) != 1 || held.Receipts[0].NetWeight != "10.02" {
		t.Fatalf("buyer holds %v", held.Receipts)
	}
	if adj := ts.WeightAdjustment.GetAmount(); adj != "300.00" && adj != "-300.00" {
		t.Fatalf("weight adjustment %q, want 300.00", adj)
	}
	check, err := settlementv1.NewSettlementAdminServiceClient(opsConn).CheckLedger(ctx, &settlementv1.CheckLedgerRequest{})
	must("check ledger", err)
	if !check.Balanced {
		t.Fatalf("ledger not balanced: %v", check)
	}
	// Another member's trade is invisible to the seller's competitor... and the
	// seller cannot read the buyer's statement.
	_, err = settlementv1.NewSettlementServiceClient(sellerConn).GetAccountBalances(ctx, &settlementv1.GetAccountBalancesRequest{ParticipantId: buyer})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("seller reading buyer's balances: %v", err)
	}
}

// TestDevFXFundedTradeEndToEnd: a member holding only CNY buys rubber
// quoted in USD through the real binary. It opts in to fund USD from CNY,
// the operator publishes a USD/CNY rate, and the core reserves and pays in
// CNY at that rate; settlement books the conversion through the FX
// position accounts and the ledger balances.
func TestDevFXFundedTradeEndToEnd(t *testing.T) {
	d := startDevSession(t)
	ctx := d.ctx
	issueDate := time.Now().In(time.UTC)
	issued, err := receiptsv1.NewReceiptsServiceClient(d.wh).IssueReceipt(ctx, &receiptsv1.IssueReceiptRequest{
		IdempotencyKey: "e2e-fx-issue-1",
		Receipt: &receiptsv1.Receipt{ReceiptNumber: "NR-QD-E2E-0001", Warehouse: "QD-FTZ-NR01", Commodity: "NR", Grade: "TSR20",
			Brand: "Sri Trang", Origin: "Thailand", ProductionDate: "2026", CustomsStatus: typev1.CustomsStatus_CUSTOMS_STATUS_BONDED,
			NetWeight: "10.000", Pieces: []*receiptsv1.Piece{{Number: "NR-P0001", NetWeight: "10.000"}}, InspectionCertificate: "CIQ-2026-NR01",
			StoragePaidThrough: issueDate.AddDate(0, 3, 0).Format(time.DateOnly), ExpiryDate: issueDate.AddDate(1, 0, 0).Format(time.DateOnly),
			HolderParticipantId: d.seller},
	})
	d.must("issue receipt", err)
	_, err = receiptsv1.NewReceiptsServiceClient(d.sellerConn).DepositReceipt(ctx, &receiptsv1.DepositReceiptRequest{
		IdempotencyKey: "e2e-fx-deposit-1", ReceiptNumber: issued.Receipt.ReceiptNumber})
	d.must("deposit receipt", err)
	_, err = settlementv1.NewBankServiceClient(d.bank).PostDepositNotice(ctx, &settlementv1.PostDepositNoticeRequest{BankReference: "QDCB-DEP-FX1",
		ParticipantId: d.buyer, Amount: &typev1.Money{Currency: "CNY", Amount: "200000.00"}, EndToEndId: "E2E-DEP-FX1",
		ValueDate: time.Now().Format(time.DateOnly)})
	d.must("deposit notice", err)
	now := time.Now()
	_, err = settlementv1.NewSettlementAdminServiceClient(d.ops).PublishFxRate(ctx, &settlementv1.PublishFxRateRequest{IdempotencyKey: "e2e-rate-1",
		Rate: &settlementv1.FxRate{BaseCurrency: "USD", QuoteCurrency: "CNY", Rate: "7.1234",
			ValidFrom: timestamppb.New(now.Add(-time.Hour)), ValidUntil: timestamppb.New(now.Add(24 * time.Hour))}})
	d.must("publish rate", err)
	_, err = settlementv1.NewSettlementServiceClient(d.buyerConn).SetFxPreference(ctx, &settlementv1.SetFxPreferenceRequest{
		IdempotencyKey: "e2e-pref-1", TradeCurrency: "USD", FundingCurrency: "CNY"})
	d.must("FX preference", err)
	d.open("TSR20-QD-B")

	buyerTrading, sellerTrading := tradingv1.NewTradingServiceClient(d.buyerConn), tradingv1.NewTradingServiceClient(d.sellerConn)
	eventually(t, "seller's order accepted", func() error {
		_, err := sellerTrading.PlaceOrder(ctx, &tradingv1.PlaceOrderRequest{ClientOrderId: "fx-s-1", Symbol: "TSR20-QD-B", Side: typev1.Side_SIDE_SELL,
			OrderType: tradingv1.OrderType_ORDER_TYPE_LIMIT, TimeInForce: tradingv1.TimeInForce_TIME_IN_FORCE_GOOD_TILL_CANCELLED,
			Price: &typev1.Money{Currency: "USD", Amount: "1751"}, Quantity: "10"})
		return err
	})
	buyReq := func(cloid string, tif tradingv1.TimeInForce) *tradingv1.PlaceOrderRequest {
		return &tradingv1.PlaceOrderRequest{ClientOrderId: cloid, Symbol: "TSR20-QD-B", Side: typev1.Side_SIDE_BUY,
			OrderType: tradingv1.OrderType_ORDER_TYPE_LIMIT, TimeInForce: tif, Price: &typev1.Money{Currency: "USD", Amount: "1751"}, Quantity: "10"}
	}
	// The buyer has no USD: until its preference reaches the core the order
	// is refused for funds; then a GTC order is refused (an FX-funded order
	// lives a day) and a day order trades.
	eventually(t, "funding preference reaches the core", func() error {
		_, err := buyerTrading.PlaceOrder(ctx, buyReq("fx-gtc", tradingv1.TimeInForce_TIME_IN_FORCE_GOOD_TILL_CANCELLED))
		if status.Code(err) == codes.InvalidArgument {
			return nil
		}
		return fmt.Errorf("GTC order: %v", err)
	})
	var buy *tradingv1.PlaceOrderResponse
	eventually(t, "buyer's CNY reach the core", func() error {
		buy, err = buyerTrading.PlaceOrder(ctx, buyReq("fx-b-1", tradingv1.TimeInForce_TIME_IN_FORCE_DAY))
		return err
	})
	// 10 t x 1,751 USD = 17,510.00 USD x 7.1234 = 124,730.734: 124,730.74 CNY paid.
	if len(buy.Executions) != 1 || buy.Executions[0].Price.Amount != "1751.00" || buy.Executions[0].Fx.GetAmount().GetAmount() != "124730.74" ||
		buy.Executions[0].Fx.GetAmount().GetCurrency() != "CNY" || buy.Executions[0].Fx.GetRate() != "7.1234" {
		t.Fatalf("buy executions = %v", buy.Executions)
	}
	bal, err := buyerTrading.GetBalances(ctx, &tradingv1.GetBalancesRequest{})
	d.must("balances", err)
	for _, f := range bal.Funds {
		if (f.Currency == "CNY" && (f.Total != "75269.26" || f.Reserved != "0.00")) || (f.Currency == "USD" && f.Total != "0.00") {
			t.Fatalf("buyer's trading funds %v", bal.Funds)
		}
	}
	tradeID := buy.Executions[0].TradeId
	eventually(t, "trade settles", func() error {
		r, err := settlementv1.NewSettlementServiceClient(d.buyerConn).GetTradeSettlement(ctx, &settlementv1.GetTradeSettlementRequest{TradeId: tradeID})
		if err != nil {
			return err
		}
		if r.Settlement.Status != settlementv1.SettlementStatus_SETTLEMENT_STATUS_SETTLED {
			return fmt.Errorf("settlement %v", r.Settlement)
		}
		return nil
	})
	ledger, err := settlementv1.NewSettlementServiceClient(d.buyerConn).GetAccountBalances(ctx, &settlementv1.GetAccountBalancesRequest{})
	d.must("ledger balances", err)
	got := map[string]string{}
	for _, b := range ledger.Balances {
		got[b.Account] = b.Balance.Amount
	}
	if got["member:"+d.buyer+":available:CNY"] != "75269.26" || got["member:"+d.buyer+":available:USD"] != "0.00" {
		t.Fatalf("buyer's ledger %v", got)
	}
	// The bank is told to convert the buyer's CNY into the seller's USD.
	sctx, cancelStream := context.WithTimeout(ctx, 10*time.Second)
	defer cancelStream()
	stream, err := settlementv1.NewBankServiceClient(d.bank).StreamInstructions(sctx, &settlementv1.StreamInstructionsRequest{})
	d.must("stream instructions", err)
	for {
		in, err := stream.Recv()
		d.must("instruction", err)
		i := in.Instruction
		if i.Kind == settlementv1.InstructionKind_INSTRUCTION_KIND_FX_CONVERSION {
			if i.Amount.Amount != "124730.74" || i.Amount.Currency != "CNY" || i.CounterAmount.Amount != "17510.00" || i.CounterAmount.Currency != "USD" {
				t.Fatalf("FX instruction %v", i)
			}
			break
		}
	}
	check, err := settlementv1.NewSettlementAdminServiceClient(d.ops).CheckLedger(ctx, &settlementv1.CheckLedgerRequest{})
	d.must("check ledger", err)
	if !check.Balanced {
		t.Fatalf("ledger not balanced: %v", check)
	}
}

// TestDevConfiguredCurrency: `--currencies KRW:0` adds won to the whole
// exchange without code: the operator opens a KRW settlement account, the
// bank's KRW deposit reaches the member's trading funds and the ledger.
func TestDevConfiguredCurrency(t *testing.T) {
	d := startDevSession(t, "--currencies", "KRW:0")
	ctx := d.ctx
	_, err := listingv1.NewListingServiceClient(d.ops).AddSettlementAccount(ctx, &listingv1.AddSettlementAccountRequest{
		IdempotencyKey: "krw-acct", Account: &listingv1.SettlementAccount{ParticipantId: d.buyer, Currency: "KRW",
			BankParticipantId: listing.DemoBank, AccountNumber: "KR-0001"}})
	d.must("KRW account", err)
	_, err = settlementv1.NewBankServiceClient(d.bank).PostDepositNotice(ctx, &settlementv1.PostDepositNoticeRequest{BankReference: "KRW-DEP-1",
		ParticipantId: d.buyer, Amount: &typev1.Money{Currency: "KRW", Amount: "5000000"}, ValueDate: time.Now().Format(time.DateOnly)})
	d.must("KRW deposit", err)
	eventually(t, "KRW in the core", func() error {
		b, err := tradingv1.NewTradingServiceClient(d.buyerConn).GetBalances(ctx, &tradingv1.GetBalancesRequest{})
		if err != nil {
			return err
		}
		for _, f := range b.Funds {
			if f.Currency == "KRW" && f.Total == "5000000" {
				return nil
			}
		}
		return fmt.Errorf("funds %v", b.Funds)
	})
	_, err = settlementv1.NewBankServiceClient(d.bank).PostDepositNotice(ctx, &settlementv1.PostDepositNoticeRequest{BankReference: "XYZ-DEP-1",
		ParticipantId: d.buyer, Amount: &typev1.Money{Currency: "XYZ", Amount: "1"}, ValueDate: time.Now().Format(time.DateOnly)})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unconfigured currency: %v", err)
	}
}
