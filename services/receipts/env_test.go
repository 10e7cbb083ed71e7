package receipts_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/server"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	"github.com/bcx-exchange/bcx/pkg/sqlstore/sqlstoretest"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
	"github.com/bcx-exchange/bcx/services/receipts"
)

// clock is the registry's business clock in tests: real time plus an offset
// a test can move forward (expiry).
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// env is the registry behind the real interceptors, with the real listing
// service (demo market, plus a second warehouse operator and a second bank)
// and an in-memory core, and a client per participant.
type env struct {
	t        *testing.T
	db       *sqlstore.DB
	core     *receipts.MemCore
	clock    *clock
	srv      *receipts.Server
	listing  listingv1.ListingServiceClient // as the operator
	wh       receiptsv1.ReceiptsServiceClient
	wh2      receiptsv1.ReceiptsServiceClient // WH-OTHER, operates QD-OTHER
	alpha    receiptsv1.ReceiptsServiceClient
	beta     receiptsv1.ReceiptsServiceClient
	bank     receiptsv1.ReceiptsServiceClient
	bank2    receiptsv1.ReceiptsServiceClient
	operator receiptsv1.ReceiptsServiceClient
	newSrv   func(core *receipts.MemCore) *receipts.Server
	run      func(s *receipts.Server) (stop func())
	stopRun  func()

	backend sqlstoretest.Backend
	// stl is settlement as the registry sees it (Config.Settlement).
	stl *fakeSettlement
	// cfg is the registry's configuration, less the core: newSrv uses it.
	cfg receipts.Config
	// For tests that run more services beside the registry: the listing
	// server's verifier and a connection to it, and a new participant's token.
	logger      *slog.Logger
	verifier    *listing.Verifier
	listingConn func(token string) *grpc.ClientConn
	newToken    func(id string, role typev1.Role) string
}

func dialer(t *testing.T, lis *bufconn.Listener) func(token string) *grpc.ClientConn {
	return func(token string) *grpc.ClientConn {
		opts := []grpc.DialOption{
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
		}
		if token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(auth.BearerCredentials{Token: token, Insecure: true}))
		}
		conn, err := grpc.NewClient("passthrough:///bufnet", opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
}

func newEnv(t *testing.T, b sqlstoretest.Backend) *env {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(testLog(), nil))

	// The listing service, on its own embedded database whatever the backend
	// under test (it is not what is tested here).
	lstore, err := listing.NewStore(ctx, sqlstoretest.OpenSQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	verifier := listing.NewVerifier(lstore, time.Minute)
	lsvc := listing.NewServer(lstore, money.NewRegistry(), verifier, logger)
	creds, err := listing.SeedDemo(ctx, lsvc, true)
	if err != nil {
		t.Fatal(err)
	}
	lsrv := server.New(logger, verifier, listing.Policy())
	listingv1.RegisterListingServiceServer(lsrv.GRPC, lsvc)
	llis := bufconn.Listen(1 << 20)
	go func() { _ = lsrv.GRPC.Serve(llis) }()
	t.Cleanup(lsrv.GRPC.Stop)
	ldial := dialer(t, llis)
	lop := listingv1.NewListingServiceClient(ldial(creds.Operator.Token))
	// A second warehouse operator with a warehouse of its own, and a second bank.
	token := func(id string, role typev1.Role) string {
		if _, err := lop.CreateParticipant(ctx, &listingv1.CreateParticipantRequest{Id: id, Name: id, Role: role}); err != nil {
			t.Fatal(err)
		}
		resp, err := lop.IssueCredential(ctx, &listingv1.IssueCredentialRequest{ParticipantId: id})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Token
	}
	wh2Token := token("WH-OTHER", typev1.Role_ROLE_WAREHOUSE)
	bank2Token := token("BANK-TWO", typev1.Role_ROLE_CLEARING_BANK)
	if _, err := lop.CreateWarehouse(ctx, &listingv1.CreateWarehouseRequest{Warehouse: &listingv1.Warehouse{
		Code: "QD-OTHER", Name: "Other cotton warehouse", City: "Qingdao", OperatorParticipantId: "WH-OTHER"}}); err != nil {
		t.Fatal(err)
	}
	// An instrument for cotton in both warehouses, so goods of either qualify.
	spec := listing.DemoInstruments()["CF3128B-QD"]
	spec.Warehouses = []string{"QD-CF01", "QD-OTHER"}
	if _, err := lop.CreateInstrument(ctx, &listingv1.CreateInstrumentRequest{Symbol: "CF3128B-ALL", Spec: spec}); err != nil {
		t.Fatal(err)
	}

	db := b.Open(t)
	e := &env{t: t, db: db, backend: b, core: receipts.NewMemCore(), clock: &clock{}, listing: lop, stl: newFakeSettlement(),
		logger: logger, verifier: verifier, listingConn: ldial, newToken: token}
	e.cfg = receipts.Config{DB: db, Listing: lop, Settlement: e.stl, Logger: logger, Now: e.clock.Now,
		ApplyWait: 10 * time.Second, ResendAfter: 300 * time.Millisecond}
	e.newSrv = func(core *receipts.MemCore) *receipts.Server {
		cfg := e.cfg
		cfg.Core = core
		s, err := receipts.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	e.run = func(s *receipts.Server) func() {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = s.Run(rctx); close(done) }()
		var once sync.Once
		stop := func() { once.Do(func() { cancel(); <-done }) }
		t.Cleanup(stop)
		return stop
	}
	e.srv = e.newSrv(e.core)
	e.stopRun = e.run(e.srv)

	rsrv := server.New(logger, verifier, receipts.Policy())
	receiptsv1.RegisterReceiptsServiceServer(rsrv.GRPC, e.srv)
	rlis := bufconn.Listen(1 << 20)
	go func() { _ = rsrv.GRPC.Serve(rlis) }()
	t.Cleanup(rsrv.GRPC.Stop)
	rdial := dialer(t, rlis)
	client := func(token string) receiptsv1.ReceiptsServiceClient {
		return receiptsv1.NewReceiptsServiceClient(rdial(token))
	}
	e.wh, e.wh2 = client(creds.Warehouse.Token), client(wh2Token)
	e.alpha, e.beta = client(creds.Members[0].Token), client(creds.Members[1].Token)
	e.bank, e.bank2 = client(creds.Bank.Token), client(bank2Token)
	e.operator = client(creds.Operator.Token)
	return e
}

func forEachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range sqlstoretest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, b))
		})
	}
}

func wantCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %v (%v), want %v", st.Code(), err, code)
	}
	return st
}

// wantField checks an InvalidArgument names the field in a BadRequest detail.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	st := wantCode(t, err, codes.InvalidArgument)
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				if v.Field == field {
					return
				}
			}
			t.Fatalf("field violations %v, want field %q (%v)", br.FieldViolations, field, err)
		}
	}
	t.Fatalf("no BadRequest detail in %v, want field %q", err, field)
}

// wantState checks a FailedPrecondition whose message names the state.
func wantState(t *testing.T, err error, state string) {
	t.Helper()
	st := wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(st.Message(), state) {
		t.Fatalf("message %q does not name the state %q", st.Message(), state)
	}
}

// wantNotFound checks the answer is exactly the one for a receipt that does
// not exist.
func wantNotFound(t *testing.T, err error, number string) {
	t.Helper()
	st := wantCode(t, err, codes.NotFound)
	if want := fmt.Sprintf("receipt %q not found", number); st.Message() != want {
		t.Fatalf("NotFound message %q, want %q", st.Message(), want)
	}
}

var ctx = context.Background()

func date(days int) string { return time.Now().AddDate(0, 0, days).Format(time.DateOnly) }

// cotton is a request body for cotton in QD-CF01 held by M-ALPHA with the
// given bale weights (bales numbered <number>-B<i>).
func cotton(number string, weights ...string) *receiptsv1.Receipt {
	if len(weights) == 0 {
		weights = []string{"5", "5.01", "4.99", "5"}
	}
	r := &receiptsv1.Receipt{ReceiptNumber: number, Warehouse: "QD-CF01", Commodity: "CF", Grade: "3128B", Brand: "XJ-1",
		Origin: "Xinjiang", ProductionDate: "2025", InspectionCertificate: "CIQ-2025-001", StoragePaidThrough: date(30),
		ExpiryDate: date(180), HolderParticipantId: listing.DemoMemberA}
	var total int64
	for i, w := range weights {
		r.Pieces = append(r.Pieces, &receiptsv1.Piece{Number: fmt.Sprintf("%s-B%d", number, i+1), NetWeight: w})
		total += kg(w)
	}
	r.NetWeight = fmt.Sprintf("%d.%03d", total/1000, total%1000)
	return r
}

// kg reads a decimal tonne string with up to 3 places as kilograms.
func kg(w string) int64 {
	whole, frac, _ := strings.Cut(w, ".")
	n, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt((frac + "000")[:3], 10, 64)
	return n*1000 + f
}

func (e *env) issue(r *receiptsv1.Receipt) *receiptsv1.Receipt {
	e.t.Helper()
	resp, err := e.wh.IssueReceipt(ctx, &receiptsv1.IssueReceiptRequest{Receipt: r})
	if err != nil {
		e.t.Fatalf("issue %s: %v", r.ReceiptNumber, err)
	}
	return resp.Receipt
}

func (e *env) get(c receiptsv1.ReceiptsServiceClient, number string) *receiptsv1.GetReceiptResponse {
	e.t.Helper()
	resp, err := c.GetReceipt(ctx, &receiptsv1.GetReceiptRequest{ReceiptNumber: number})
	if err != nil {
		e.t.Fatalf("get %s: %v", number, err)
	}
	return resp
}

func (e *env) root() *receiptsv1.RegistryRoot {
	e.t.Helper()
	resp, err := e.operator.GetRegistryRoot(ctx, &receiptsv1.GetRegistryRootRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.Root
}

func (e *env) deposit(c receiptsv1.ReceiptsServiceClient, number string) *receiptsv1.DepositReceiptResponse {
	e.t.Helper()
	resp, err := c.DepositReceipt(ctx, &receiptsv1.DepositReceiptRequest{ReceiptNumber: number})
	if err != nil {
		e.t.Fatalf("deposit %s: %v", number, err)
	}
	return resp
}

// position is the consumer's stored position.
func (e *env) position() int64 {
	var n int64
	if err := e.db.QueryRowContext(ctx, `SELECT sequence FROM consumer_position WHERE name = 'core'`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// trade appends a trade of M-ALPHA selling to M-BETA and waits until the
// registry has applied it.
func (e *env) trade(id int64, qty string, allocs ...string) int64 {
	e.t.Helper()
	tr := &tradingv1.TradeEvent{TradeId: id, Symbol: "CF3128B-QD", Price: &typev1.Money{Currency: "CNY", Amount: "15235"},
		Quantity: qty, SellerParticipantId: listing.DemoMemberA, BuyerParticipantId: listing.DemoMemberB}
	for i := 0; i+1 < len(allocs); i += 2 {
		tr.Allocations = append(tr.Allocations, &tradingv1.ReceiptAllocation{ReceiptNumber: allocs[i], Weight: allocs[i+1]})
	}
	seq := e.core.Trade(tr)
	waitFor(e.t, "the trade to be applied", func() bool { return e.position() >= seq })
	return seq
}

// pending is the command a receipt waits on ("" when none).
func (e *env) pending(number string) string {
	var p string
	if err := e.db.QueryRowContext(ctx, `SELECT pending FROM receipts WHERE receipt_number = $1`, number).Scan(&p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func kinds(events []*receiptsv1.ReceiptEvent) string {
	var out []string
	for _, ev := range events {
		out = append(out, ev.Kind)
	}
	return strings.Join(out, ",")
}

// testLog is where the services log in tests: nowhere, unless BCX_TEST_LOG is set.
func testLog() io.Writer {
	if os.Getenv("BCX_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}
