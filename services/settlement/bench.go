package settlement

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bcx-exchange/bcx/pkg/bankstatement"
	pkgmoney "github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/settlement/coretest"
	"github.com/bcx-exchange/bcx/services/settlement/fees"
	"github.com/bcx-exchange/bcx/services/settlement/internal/bulk"
)

// BenchResult is what `bcx bench settlement` prints: medians over the runs,
// and each run.
type BenchResult struct {
	Backend      string     `json:"backend"`
	Trades       int        `json:"trades"`
	Entries      int        `json:"entries"`
	TradesPerSec float64    `json:"trades_per_sec"`
	P99Ms        float64    `json:"p99_ms"`
	ReconSeconds float64    `json:"recon_seconds"`
	Runs         []BenchRun `json:"runs"`
}

// BenchRun is one run's measurements.
type BenchRun struct {
	TradesPerSec float64 `json:"trades_per_sec"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	ReconSeconds float64 `json:"recon_seconds"`
	Matched      int     `json:"matched"`
	Breaks       int     `json:"breaks"`
}

// BenchMain is `bcx bench settlement`. Each run books trades from an
// in-memory core through the real consumer and store (PostgreSQL when
// BCX_POSTGRES_URL or -postgres-url is set, the embedded engine otherwise),
// then reconciles a generated camt.053 against as many expected bank
// movements. It prints one JSON line: the medians of the runs, and the runs.
//
//   - trades_per_sec: trades booked / time from the first event received to
//     the last commit, with the consumer saturated (the whole log is waiting).
//   - p99_ms: 99th percentile of the time from the consumer receiving a
//     trade event to the commit of the transaction that booked it, at that
//     load (it includes the wait in the consumer's read-ahead buffer).
//   - recon_seconds: ImportStatement's work for the file: parse, check, load
//     the expected movements, match, store the report and the matches.
func BenchMain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench settlement", flag.ContinueOnError)
	trades := fs.Int("trades", 100_000, "trades to book per run")
	entries := fs.Int("entries", 100_000, "statement entries to reconcile per run")
	runs := fs.Int("runs", 3, "runs (the medians are printed)")
	batch := fs.Int("batch", 512, "events per booking transaction")
	pgURL := fs.String("postgres-url", os.Getenv("BCX_POSTGRES_URL"), "PostgreSQL URL (env BCX_POSTGRES_URL); empty: embedded engine")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *trades < 1 || *runs < 1 || *entries < 0 || *batch < 1 {
		return fmt.Errorf("bench settlement: -trades, -runs and -batch must be positive")
	}
	res := BenchResult{Backend: "sqlite", Trades: *trades, Entries: *entries}
	if *pgURL != "" {
		res.Backend = "postgres"
	}
	for i := 0; i < *runs; i++ {
		r, err := benchRun(*pgURL, *trades, *entries, *batch, int64(i+1))
		if err != nil {
			return err
		}
		res.Runs = append(res.Runs, r)
	}
	median := func(f func(BenchRun) float64) float64 {
		v := make([]float64, len(res.Runs))
		for i, r := range res.Runs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	res.TradesPerSec = median(func(r BenchRun) float64 { return r.TradesPerSec })
	res.P99Ms = median(func(r BenchRun) float64 { return r.P99Ms })
	res.ReconSeconds = median(func(r BenchRun) float64 { return r.ReconSeconds })
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, string(b))
	return err
}

// benchDB opens a fresh database: a new schema on PostgreSQL, a new file
// otherwise; cleanup drops it.
func benchDB(ctx context.Context, pgURL string) (*sqlstore.DB, func(), error) {
	if pgURL == "" {
		dir, err := os.MkdirTemp("", "bcx-bench-settlement-")
		if err != nil {
			return nil, nil, err
		}
		db, err := sqlstore.Open(ctx, filepath.Join(dir, "settlement.db"))
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		return db, func() { db.Close(); os.RemoveAll(dir) }, nil
	}
	admin, err := sqlstore.Open(ctx, pgURL)
	if err != nil {
		return nil, nil, err
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_settlement_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return nil, nil, err
	}
	u, err := url.Parse(pgURL)
	if err != nil {
		admin.Close()
		return nil, nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sqlstore.Open(ctx, u.String())
	if err != nil {
		admin.Close()
		return nil, nil, err
	}
	return db, func() {
		db.Close()
		_, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	}, nil
}

const (
	benchSymbol  = "CF3128B-QD"
	benchMembers = 1000
	benchBankA   = "BANK-BENCH-A"
	benchBankB   = "BANK-BENCH-B"
)

// benchListing is static reference data: one cotton instrument settled
// gross, and members of whom one in ten clears at a second bank (so a share
// of trades create interbank instructions).
type benchListing struct{}

func (benchListing) GetInstrument(_ context.Context, in *listingv1.GetInstrumentRequest, _ ...grpc.CallOption) (*listingv1.GetInstrumentResponse, error) {
	if in.Symbol != benchSymbol {
		return nil, status.Error(codes.NotFound, "no such instrument")
	}
	return &listingv1.GetInstrumentResponse{Instrument: &listingv1.Instrument{Symbol: benchSymbol, Spec: &listingv1.InstrumentSpec{
		Commodity: "CF", QuoteCurrency: "CNY", LotSize: "5", Unit: "t", PriceTick: "5",
		SettlementCycle: listingv1.SettlementCycle_SETTLEMENT_CYCLE_T0_GROSS}}}, nil
}

func (benchListing) GetCommodity(_ context.Context, in *listingv1.GetCommodityRequest, _ ...grpc.CallOption) (*listingv1.GetCommodityResponse, error) {
	return &listingv1.GetCommodityResponse{Commodity: &listingv1.Commodity{Code: in.Code, DeliveryTolerance: "0.02"}}, nil
}

func (benchListing) ListSettlementAccounts(_ context.Context, in *listingv1.ListSettlementAccountsRequest, _ ...grpc.CallOption) (*listingv1.ListSettlementAccountsResponse, error) {
	bank := benchBankA
	var n int
	fmt.Sscanf(in.ParticipantId, "M-%d", &n)
	if n%10 == 0 {
		bank = benchBankB
	}
	return &listingv1.ListSettlementAccountsResponse{Accounts: []*listingv1.SettlementAccount{
		{ParticipantId: in.ParticipantId, Currency: "CNY", BankParticipantId: bank, AccountNumber: in.ParticipantId + "-CNY"}}}, nil
}

func benchRun(pgURL string, nTrades, nEntries, batch int, seed int64) (BenchRun, error) {
	ctx := context.Background()
	db, cleanup, err := benchDB(ctx, pgURL)
	if err != nil {
		return BenchRun{}, err
	}
	defer cleanup()
	core := coretest.New()
	core.Shared = true
	s, err := New(ctx, Config{DB: db, Listing: benchListing{}, Core: core, Currencies: pkgmoney.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), EventBatch: batch, RefDataTTL: time.Hour})
	if err != nil {
		return BenchRun{}, err
	}

	// The trades, as the core would report them: 1-3 per sequence, fees from
	// a 2 bp schedule with a 5 CNY minimum.
	cnyCur := pkgmoney.Currency{Code: "CNY", Exponent: 2}
	rule, _, _ := fees.ParseRule(&typev1.FeeRule{Basis: typev1.FeeBasis_FEE_BASIS_RATE, Value: "0.0002",
		Minimum: &typev1.Money{Currency: "CNY", Amount: "5.00"}}, cnyCur)
	rng := mrand.New(mrand.NewPCG(uint64(seed), 7))
	at := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	for id := int64(1); id <= int64(nTrades); {
		k := 1 + rng.IntN(3)
		var ts []*tradingv1.TradeEvent
		for i := 0; i < k && id <= int64(nTrades); i++ {
			lots := int64(1 + rng.IntN(10))
			priceMinor := int64(14_500+5*rng.IntN(200)) * 100
			principal := priceMinor * lots * 5
			fee, _ := rule.Fee(principal, lots)
			buyer, seller := rng.IntN(benchMembers), rng.IntN(benchMembers)
			ts = append(ts, &tradingv1.TradeEvent{TradeId: id, Symbol: benchSymbol,
				Price: &typev1.Money{Currency: "CNY", Amount: cnyCur.FormatAmount(priceMinor)}, Quantity: fmt.Sprint(lots * 5), Lots: lots,
				BuyerParticipantId: fmt.Sprintf("M-%d", buyer), SellerParticipantId: fmt.Sprintf("M-%d", seller),
				BuyerFee: &typev1.Money{Currency: "CNY", Amount: cnyCur.FormatAmount(fee)}, SellerFee: &typev1.Money{Currency: "CNY", Amount: cnyCur.FormatAmount(fee)}})
			id++
		}
		core.PushTrades(at, ts...)
		at = at.Add(time.Millisecond)
	}
	// Warm the reference data as a running service would have it.
	for m := 0; m < benchMembers; m++ {
		if _, err := s.ref.Banks(ctx, fmt.Sprintf("M-%d", m)); err != nil {
			return BenchRun{}, err
		}
	}

	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, nTrades)
		first     time.Time
		last      time.Time
		booked    int
		done      = make(chan struct{})
	)
	s.onBooked = func(b []eventItem, committed time.Time) {
		mu.Lock()
		defer mu.Unlock()
		for _, it := range b {
			if first.IsZero() || it.recvAt.Before(first) {
				first = it.recvAt
			}
			latencies = append(latencies, committed.Sub(it.recvAt))
		}
		booked += len(b)
		last = committed
		if booked >= nTrades {
			select {
			case <-done:
			default:
				close(done)
			}
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- s.consume(runCtx) }()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		cancel()
		return BenchRun{}, fmt.Errorf("bench: booking did not finish")
	}
	cancel()
	<-runErr
	var r BenchRun
	mu.Lock()
	r.TradesPerSec = float64(booked) / last.Sub(first).Seconds()
	slices.Sort(latencies)
	r.P50Ms = float64(latencies[len(latencies)/2]) / 1e6
	r.P99Ms = float64(latencies[len(latencies)*99/100]) / 1e6
	mu.Unlock()
	check, err := inTx(ctx, s, func(q *sql.Tx) (bool, error) {
		c, err := s.ledger.Check(ctx, q)
		if err != nil {
			return false, err
		}
		return c.Balanced() && c.Transactions == int64(nTrades), nil
	})
	if err != nil || !check {
		return r, fmt.Errorf("bench: the ledger after booking does not check out (%v)", err)
	}

	if nEntries > 0 {
		if err := benchRecon(ctx, s, nEntries, seed, &r); err != nil {
			return r, err
		}
	}
	return r, nil
}

// benchRecon generates a statement of n entries and the ledger's expected
// movements for it — most carry the entry's end-to-end id, some only its
// amount and date, some a different amount, some are missing — and times
// the import.
func benchRecon(ctx context.Context, s *Service, n int, seed int64, r *BenchRun) error {
	var (
		buf  bytes.Buffer
		rows [][]any
		id   int64
		rng  = mrand.New(mrand.NewPCG(uint64(seed), 11))
	)
	bank := benchBankA
	hook := func(e bankstatement.Entry) {
		amt, _ := e.AmountMinor(2)
		if e.Direction == bankstatement.Debit {
			amt = -amt
		}
		e2e, vd := e.EndToEndID, e.ValueDate.String()
		switch k := rng.IntN(100); {
		case k < 2: // the ledger does not expect it
			return
		case k < 7: // no reference in the ledger: amount and date
			e2e = ""
			if k%2 == 0 {
				vd = e.BookingDate.String()
			}
		case k < 9: // the bank booked a different amount
			amt++
		}
		id++
		rows = append(rows, []any{id, bank, "CNY", amt, e2e, "", vd, fmt.Sprintf("bench/%d", id), int64(0), int64(0)})
	}
	if err := bankstatement.GenerateCamt053(&buf, n, seed, bankstatement.WithEntryHook(hook)); err != nil {
		return err
	}
	// Expected movements no statement entry will match.
	for i := 0; i < n/100; i++ {
		id++
		rows = append(rows, []any{id, bank, "CNY", int64(1 + rng.IntN(1_000_000)), "", "", "2026-01-14", fmt.Sprintf("bench/%d", id), int64(0), int64(0)})
	}
	if err := s.db.InTx(ctx, func(q *sql.Tx) error {
		_, err := bulk.Insert(ctx, q, s.db.Dialect, "stl_bank_movements", []string{"movement_id", "bank", "currency", "amount_minor",
			"end_to_end_id", "bank_reference", "value_date", "source", "transaction_id", "created_at"}, rows, "")
		return err
	}); err != nil {
		return err
	}
	s.store.movement.Store(id)
	for _, t := range []string{"stl_bank_movements", "stl_recon_matches"} {
		if _, err := s.db.ExecContext(ctx, "ANALYZE "+t); err != nil {
			return err
		}
	}
	start := time.Now()
	reports, _, err := s.Import(ctx, bank, buf.Bytes(), "bench.xml")
	if err != nil {
		return err
	}
	r.ReconSeconds = time.Since(start).Seconds()
	rep := reports[0]
	r.Matched = len(rep.Matched)
	r.Breaks = len(rep.UnmatchedBankEntries) + len(rep.UnmatchedLedgerMovements) + len(rep.AmountMismatches)
	if r.Matched < n*85/100 {
		return fmt.Errorf("bench: only %d of %d entries matched", r.Matched, n)
	}
	return nil
}
