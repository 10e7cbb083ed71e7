package receipts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
)

// BenchResult is the JSON line `bcx bench receipts` prints.
type BenchResult struct {
	Benchmark string `json:"benchmark"`
	Backend   string `json:"backend"`
	Receipts  int    `json:"receipts"`
	// IssuedPerSec: IssueReceipt calls completed per second, Workers at a time.
	IssuedPerSec float64 `json:"issued_per_sec"`
	// P99Ms: 99th percentile latency of IssueReceipt.
	P99Ms          float64 `json:"p99_ms"`
	DepositsPerSec float64 `json:"deposits_per_sec"`
	// Transfers: trade allocations delivered (title transfers).
	Transfers int `json:"transfers"`
	// TransfersPerSec: from the first trade appended to the core's log to the
	// consumer having committed the last one.
	TransfersPerSec float64 `json:"transfers_per_sec"`
	// TransferBatchP99Ms: 99th percentile time to apply and commit one batch
	// of core events.
	TransferBatchP99Ms float64 `json:"transfer_batch_p99_ms"`
	ChainEvents        int64   `json:"chain_events"`
	Workers            int     `json:"workers"`
	Batch              int     `json:"batch"`
}

// BenchMain is `bcx bench receipts`: it issues receipts of 8 bales (~40 t of
// cotton) through IssueReceipt, deposits them, then appends four 10 t trades
// per receipt to an in-memory core log and measures the registry delivering
// them (three partial deliveries, which split the receipt, and one whole
// transfer each). It runs against PostgreSQL when BCX_POSTGRES_URL is set (in
// a schema of its own, dropped afterwards) and an embedded SQLite file
// otherwise, calls the service in-process (no gRPC), and prints one JSON line.
func BenchMain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bcx bench receipts", flag.ContinueOnError)
	n := fs.Int("receipts", 2000, "receipts to issue (each is then delivered in 4 trades)")
	workers := fs.Int("workers", 8, "concurrent IssueReceipt and DepositReceipt callers")
	batch := fs.Int("batch", 512, "most core events applied per transaction")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tmp, err := os.MkdirTemp("", "bcx-bench-receipts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	ldb, err := sqlstore.Open(ctx, filepath.Join(tmp, "listing.db"))
	if err != nil {
		return err
	}
	defer ldb.Close()
	lstore, err := listing.NewStore(ctx, ldb)
	if err != nil {
		return err
	}
	lsrv := listing.NewServer(lstore, money.NewRegistry(), listing.NewVerifier(lstore, time.Minute), logger)
	if _, err := listing.SeedDemo(ctx, lsrv, false); err != nil {
		return err
	}

	db, backend, cleanup, err := benchDB(ctx, tmp)
	if err != nil {
		return err
	}
	defer cleanup()
	core := NewMemCore()
	srv, err := New(ctx, Config{DB: db, Listing: DirectListing(lsrv), Core: core, Logger: logger, BatchSize: *batch})
	if err != nil {
		return err
	}
	var batchMu sync.Mutex
	var batchTimes []time.Duration
	srv.observeBatch = func(_ int, d time.Duration) {
		batchMu.Lock()
		batchTimes = append(batchTimes, d)
		batchMu.Unlock()
	}
	runDone := make(chan struct{})
	go func() { _ = srv.Run(ctx); close(runDone) }()
	defer func() { cancel(); <-runDone }()

	var id [4]byte
	_, _ = rand.Read(id[:])
	run := strings.ToUpper(hex.EncodeToString(id[:]))
	res := BenchResult{Benchmark: "receipts", Backend: backend, Receipts: *n, Workers: *workers, Batch: *batch}

	// Issue.
	wh := auth.WithPrincipal(ctx, auth.Principal{ParticipantID: listing.DemoWarehouse, Role: typev1.Role_ROLE_WAREHOUSE})
	expiry := time.Now().AddDate(1, 0, 0).Format(time.DateOnly)
	lat := make([]time.Duration, *n)
	start := time.Now()
	if err := parallel(*n, *workers, func(i int) error {
		rc := &receiptsv1.Receipt{ReceiptNumber: fmt.Sprintf("B%s-%06d", run, i), Warehouse: "QD-CF01", Commodity: "CF",
			Grade: "3128B", Brand: "XJ", Origin: "Xinjiang", ProductionDate: "2025", InspectionCertificate: "CIQ-" + run,
			ExpiryDate: expiry, HolderParticipantId: listing.DemoMemberA}
		var total int64
		for j := 0; j < 8; j++ {
			w := int64(5000 + 15*(j%3-1)) // bales of 4.985, 5 and 5.015 t
			total += w
			rc.Pieces = append(rc.Pieces, &receiptsv1.Piece{Number: fmt.Sprintf("%s-%06d-%d", run, i, j), NetWeight: formatWeight(w, 3)})
		}
		rc.NetWeight = formatWeight(total, 3)
		t0 := time.Now()
		_, err := srv.IssueReceipt(wh, &receiptsv1.IssueReceiptRequest{Receipt: rc})
		lat[i] = time.Since(t0)
		return err
	}); err != nil {
		return fmt.Errorf("issue: %w", err)
	}
	res.IssuedPerSec = float64(*n) / time.Since(start).Seconds()
	res.P99Ms = p99(lat)

	// Deposit.
	alpha := auth.WithPrincipal(ctx, auth.Principal{ParticipantID: listing.DemoMemberA, Role: typev1.Role_ROLE_MEMBER})
	start = time.Now()
	if err := parallel(*n, *workers, func(i int) error {
		_, err := srv.DepositReceipt(alpha, &receiptsv1.DepositReceiptRequest{ReceiptNumber: fmt.Sprintf("B%s-%06d", run, i)})
		return err
	}); err != nil {
		return fmt.Errorf("deposit: %w", err)
	}
	res.DepositsPerSec = float64(*n) / time.Since(start).Seconds()

	// Trades: built first, then appended as fast as the log takes them.
	var trades []*tradingv1.TradeEvent
	for k := 0; k < 4; k++ {
		for i := 0; i < *n; i++ {
			trades = append(trades, &tradingv1.TradeEvent{TradeId: int64(k**n + i + 1), Symbol: "CF3128B-QD",
				Price: &typev1.Money{Currency: "CNY", Amount: "15235"}, Quantity: "10", Lots: 2,
				BuyerParticipantId: listing.DemoMemberB, SellerParticipantId: listing.DemoMemberA,
				Allocations: []*tradingv1.ReceiptAllocation{{ReceiptNumber: fmt.Sprintf("B%s-%06d", run, i), Weight: "10"}}})
		}
	}
	batchMu.Lock()
	batchTimes = nil
	batchMu.Unlock()
	start = time.Now()
	var last int64
	for _, tr := range trades {
		last = core.Trade(tr)
	}
	for {
		srv.mu.Lock()
		applied := srv.applied
		srv.mu.Unlock()
		if applied >= last {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	res.Transfers = len(trades)
	res.TransfersPerSec = float64(len(trades)) / elapsed.Seconds()
	batchMu.Lock()
	res.TransferBatchP99Ms = p99(batchTimes)
	batchMu.Unlock()

	// Check the outcome, so a fast wrong answer cannot pass for a result.
	var delivered, breaks int
	err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries`).Scan(&delivered)
	if err == nil {
		err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM breaks`).Scan(&breaks)
	}
	if err == nil {
		err = db.QueryRowContext(ctx, `SELECT idx FROM chain_head WHERE id = 1`).Scan(&res.ChainEvents)
	}
	if err != nil {
		return err
	}
	if delivered != len(trades) || breaks != 0 {
		return fmt.Errorf("bench: %d deliveries and %d breaks for %d trades", delivered, breaks, len(trades))
	}
	return json.NewEncoder(stdout).Encode(res)
}

func benchDB(ctx context.Context, tmp string) (*sqlstore.DB, string, func(), error) {
	base := os.Getenv("BCX_POSTGRES_URL")
	if base == "" {
		db, err := sqlstore.Open(ctx, filepath.Join(tmp, "receipts.db"))
		if err != nil {
			return nil, "", nil, err
		}
		return db, "sqlite", func() { db.Close() }, nil
	}
	admin, err := sqlstore.Open(ctx, base)
	if err != nil {
		return nil, "", nil, err
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_receipts_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return nil, "", nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		admin.Close()
		return nil, "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sqlstore.Open(ctx, u.String())
	if err != nil {
		admin.Close()
		return nil, "", nil, err
	}
	return db, "postgres", func() {
		db.Close()
		_, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	}, nil
}

// parallel runs fn(0..n-1) on w goroutines and returns the first error.
func parallel(n, w int, fn func(i int) error) error {
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for g := 0; g < max(1, w); g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || first.Load() != nil {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

func p99(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[(len(s)*99)/100]) / float64(time.Millisecond)
}

// DirectListing adapts an in-process listing.Server to the Listing interface,
// calling it as the exchange operator (for `bcx dev`, where both services
// share a process, and for the benchmark).
func DirectListing(s *listing.Server) Listing { return directListing{s} }

type directListing struct{ s *listing.Server }

func (d directListing) op(ctx context.Context) context.Context {
	return auth.WithPrincipal(ctx, auth.Principal{ParticipantID: "receipts", Role: typev1.Role_ROLE_OPERATOR})
}

func (d directListing) GetCommodity(ctx context.Context, in *listingv1.GetCommodityRequest, _ ...grpc.CallOption) (*listingv1.GetCommodityResponse, error) {
	return d.s.GetCommodity(d.op(ctx), in)
}

func (d directListing) ListWarehouses(ctx context.Context, in *listingv1.ListWarehousesRequest, _ ...grpc.CallOption) (*listingv1.ListWarehousesResponse, error) {
	return d.s.ListWarehouses(d.op(ctx), in)
}

func (d directListing) ListInstruments(ctx context.Context, in *listingv1.ListInstrumentsRequest, _ ...grpc.CallOption) (*listingv1.ListInstrumentsResponse, error) {
	return d.s.ListInstruments(d.op(ctx), in)
}

func (d directListing) GetParticipant(ctx context.Context, in *listingv1.GetParticipantRequest, _ ...grpc.CallOption) (*listingv1.GetParticipantResponse, error) {
	return d.s.GetParticipant(d.op(ctx), in)
}
