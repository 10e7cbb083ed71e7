package settlement_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

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
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
	"github.com/bcx-exchange/bcx/services/settlement"
	"github.com/bcx-exchange/bcx/services/settlement/coretest"
)

// Participants beyond the demo market: a second clearing bank with its own
// member, and the settlement service's own credential.
const (
	bankA   = listing.DemoBank // BANK-QDCB
	bankB   = "BANK-SHCB"
	memberA = listing.DemoMemberA // M-ALPHA, clears at bankA
	memberB = listing.DemoMemberB // M-BETA, clears at bankA
	memberC = "M-GAMMA"           // clears at bankB
	svcID   = "SVC-SETTLEMENT"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

// monday10am is the default time of a test: a trading day in Qingdao.
var monday10am = time.Date(2026, 3, 2, 10, 0, 0, 0, shanghai)

type client struct {
	settlementv1.SettlementServiceClient
	Bank  settlementv1.BankServiceClient
	Admin settlementv1.SettlementAdminServiceClient
}

// env is the settlement service behind the real interceptors, with the
// listing service (demo market plus bankB and memberC) on the same server,
// the fake core, and a client per participant.
type env struct {
	t          *testing.T
	db         *sqlstore.DB
	core       *coretest.Core
	clk        *clock
	currencies *money.Registry
	listing    listingv1.ListingServiceClient // as the settlement service
	opListing  listingv1.ListingServiceClient // as the operator
	svc        *settlement.Service
	cfg        settlement.Config
	stop       func()

	operator, alpha, beta, gamma, bankA, bankB, anon client
	tokens                                           map[string]string
	dial                                             func(token string) client
	// internal dials SettlementInternalService with a participant's token.
	internal func(token string) settlementv1.SettlementInternalServiceClient
}

type envOption func(*settlement.Config)

func newEnv(t *testing.T, b sqlstoretest.Backend, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	db := b.Open(t)
	currencies := money.NewRegistry()
	for _, c := range []money.Currency{{Code: "EUR", Exponent: 2}, {Code: "SEK", Exponent: 2}, {Code: "JPY", Exponent: 0}} {
		if err := currencies.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("SETTLEMENT_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	store, err := listing.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	verifier := listing.NewVerifier(store, time.Minute)
	lsrv := listing.NewServer(store, currencies, verifier, logger)
	creds, err := listing.SeedDemo(ctx, lsrv, true)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{listing.DemoOperator: creds.Operator.Token, bankA: creds.Bank.Token,
		memberA: creds.Members[0].Token, memberB: creds.Members[1].Token}
	op := auth.WithPrincipal(ctx, auth.Principal{ParticipantID: listing.DemoOperator, Role: typev1.Role_ROLE_OPERATOR})
	for _, p := range []struct {
		id   string
		role typev1.Role
	}{{bankB, typev1.Role_ROLE_CLEARING_BANK}, {memberC, typev1.Role_ROLE_MEMBER}, {svcID, typev1.Role_ROLE_SERVICE}} {
		if _, err := lsrv.CreateParticipant(op, &listingv1.CreateParticipantRequest{Id: p.id, Name: p.id, Role: p.role}); err != nil {
			t.Fatal(err)
		}
		resp, err := lsrv.IssueCredential(op, &listingv1.IssueCredentialRequest{ParticipantId: p.id, Label: "test"})
		if err != nil {
			t.Fatal(err)
		}
		tokens[p.id] = resp.Token
	}
	for _, a := range []*listingv1.SettlementAccount{
		{ParticipantId: memberC, Currency: "CNY", BankParticipantId: bankB, AccountNumber: "6217-03-CNY-0001"},
		{ParticipantId: memberC, Currency: "USD", BankParticipantId: bankB, AccountNumber: "6217-03-USD-0001"},
	} {
		if _, err := lsrv.AddSettlementAccount(op, &listingv1.AddSettlementAccountRequest{Account: a}); err != nil {
			t.Fatal(err)
		}
	}

	srv := server.New(logger, verifier, listing.Policy().Merge(settlement.Policy()))
	listingv1.RegisterListingServiceServer(srv.GRPC, lsrv)
	lis := bufconn.Listen(1 << 20)
	conns := []*grpc.ClientConn{}
	connect := func(token string) *grpc.ClientConn {
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
		conns = append(conns, conn)
		return conn
	}
	e := &env{t: t, db: db, core: coretest.New(), clk: &clock{t: monday10am}, currencies: currencies, tokens: tokens}
	e.listing = listingv1.NewListingServiceClient(connect(tokens[svcID]))
	e.opListing = listingv1.NewListingServiceClient(connect(tokens[listing.DemoOperator]))
	e.cfg = settlement.Config{DB: db, Listing: e.listing, Core: e.core, Currencies: currencies, Logger: logger,
		Clock: e.clk.Now, OutboxInterval: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, RefDataTTL: time.Hour}
	for _, o := range opts {
		o(&e.cfg)
	}
	svc, err := settlement.New(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	svc.Register(srv.GRPC)
	go func() { _ = srv.GRPC.Serve(lis) }()
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		srv.GRPC.Stop()
	})
	e.dial = func(token string) client {
		c := connect(token)
		return client{settlementv1.NewSettlementServiceClient(c), settlementv1.NewBankServiceClient(c), settlementv1.NewSettlementAdminServiceClient(c)}
	}
	e.internal = func(token string) settlementv1.SettlementInternalServiceClient {
		return settlementv1.NewSettlementInternalServiceClient(connect(token))
	}
	e.operator, e.alpha, e.beta, e.gamma = e.dial(tokens[listing.DemoOperator]), e.dial(tokens[memberA]), e.dial(tokens[memberB]), e.dial(tokens[memberC])
	e.bankA, e.bankB, e.anon = e.dial(tokens[bankA]), e.dial(tokens[bankB]), e.dial("")
	return e
}

// start runs the service's consumer and workers until the test ends (or
// the returned stop is called).
func (e *env) start() func() {
	return e.run(e.svc)
}

func (e *env) run(svc *settlement.Service) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("Run: %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// restart builds a second service over the same database, as a new process
// would after a crash.
func (e *env) restart() *settlement.Service {
	e.t.Helper()
	svc, err := settlement.New(context.Background(), e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return svc
}

func forEachBackend(t *testing.T, fn func(t *testing.T, e *env), opts ...envOption) {
	for _, b := range sqlstoretest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, b, opts...))
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

// eventually polls cond until it holds or a few seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func cny(amount string) *typev1.Money { return &typev1.Money{Currency: "CNY", Amount: amount} }
func usd(amount string) *typev1.Money { return &typev1.Money{Currency: "USD", Amount: amount} }

// balances returns a participant's balances by account name, as the
// operator reads them ("" for the exchange's own accounts).
func (e *env) balances(participant string) map[string]string {
	e.t.Helper()
	resp, err := e.operator.GetAccountBalances(context.Background(), &settlementv1.GetAccountBalancesRequest{ParticipantId: participant})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, b := range resp.Balances {
		out[b.Account] = b.Balance.Amount
	}
	return out
}

// checkLedger asserts the whole ledger balances.
func (e *env) checkLedger() *settlementv1.CheckLedgerResponse {
	e.t.Helper()
	resp, err := e.operator.Admin.CheckLedger(context.Background(), &settlementv1.CheckLedgerRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	if !resp.Balanced {
		e.t.Fatalf("ledger does not balance: %v", resp)
	}
	return resp
}

func (e *env) deposit(bank client, ref, member string, amount *typev1.Money) *settlementv1.PostDepositNoticeResponse {
	e.t.Helper()
	resp, err := bank.Bank.PostDepositNotice(context.Background(), &settlementv1.PostDepositNoticeRequest{
		BankReference: ref, ParticipantId: member, Amount: amount, ValueDate: e.clk.Now().In(shanghai).Format(time.DateOnly)})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// outboxDone waits for a core command to be acknowledged.
func (e *env) outboxDone(key string) {
	e.t.Helper()
	eventually(e.t, "outbox "+key, func() bool {
		st, _, err := e.svc.OutboxStatus(context.Background(), key)
		return err == nil && st == "done"
	})
}

// stripID removes an id from an error message, to compare the answers for
// another party's object and a missing one.
func stripID(msg, id string) string { return strings.ReplaceAll(msg, id, "<id>") }

func codeOf(err error) codes.Code { return status.Code(err) }
