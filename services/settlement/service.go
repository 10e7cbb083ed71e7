package settlement

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"
	_ "time/tzdata" // business dates are in the exchange's zone, on any machine

	"google.golang.org/grpc"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/bankstatement"
	pkgmoney "github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/settlement/ledger"
	"github.com/bcx-exchange/bcx/services/settlement/recon"
)

// Core is what settlement needs of the matching core's CoreService;
// tradingv1.CoreServiceClient satisfies it.
type Core interface {
	CreditFunds(ctx context.Context, in *tradingv1.CreditFundsRequest, opts ...grpc.CallOption) (*tradingv1.CreditFundsResponse, error)
	DebitFunds(ctx context.Context, in *tradingv1.DebitFundsRequest, opts ...grpc.CallOption) (*tradingv1.DebitFundsResponse, error)
	SetFeeSchedule(ctx context.Context, in *tradingv1.SetFeeScheduleRequest, opts ...grpc.CallOption) (*tradingv1.SetFeeScheduleResponse, error)
	SetFxRate(ctx context.Context, in *tradingv1.SetFxRateRequest, opts ...grpc.CallOption) (*tradingv1.SetFxRateResponse, error)
	SetFundingCurrency(ctx context.Context, in *tradingv1.SetFundingCurrencyRequest, opts ...grpc.CallOption) (*tradingv1.SetFundingCurrencyResponse, error)
	SubscribeEvents(ctx context.Context, in *tradingv1.SubscribeEventsRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[tradingv1.SubscribeEventsResponse], error)
}

// Listing is what settlement reads from the listing service (instruments,
// commodities, members' settlement accounts); listingv1.ListingServiceClient
// satisfies it. The client must act for a principal allowed to list every
// member's settlement accounts (a ROLE_SERVICE credential).
type Listing interface {
	GetInstrument(ctx context.Context, in *listingv1.GetInstrumentRequest, opts ...grpc.CallOption) (*listingv1.GetInstrumentResponse, error)
	GetCommodity(ctx context.Context, in *listingv1.GetCommodityRequest, opts ...grpc.CallOption) (*listingv1.GetCommodityResponse, error)
	ListSettlementAccounts(ctx context.Context, in *listingv1.ListSettlementAccountsRequest, opts ...grpc.CallOption) (*listingv1.ListSettlementAccountsResponse, error)
}

var (
	_ Core    = tradingv1.CoreServiceClient(nil)
	_ Listing = listingv1.ListingServiceClient(nil)
)

// DefaultTimeZone is where the exchange's business dates are defined.
const DefaultTimeZone = "Asia/Shanghai"

// Config is everything the settlement service needs. DB, Listing, Core and
// Currencies are required; the rest have defaults.
type Config struct {
	DB         *sqlstore.DB
	Listing    Listing
	Core       Core
	Currencies *pkgmoney.Registry
	Logger     *slog.Logger
	// Clock is the time source (default time.Now). Trade booking uses the
	// core's sequencer time from each event, never this clock.
	Clock func() time.Time
	// TimeZone of business dates (default Asia/Shanghai).
	TimeZone *time.Location

	// MaxStatementBytes bounds an imported statement (default
	// bankstatement.DefaultMaxBytes). ImportStatement is also bound by the
	// gRPC server's message limit (16 MiB); UploadStatement streams the file
	// in chunks and is bound by this alone.
	MaxStatementBytes int64
	// MatchToleranceDays is the value-date tolerance of the amount-and-date
	// reconciliation pass (default recon.DefaultToleranceDays).
	MatchToleranceDays int
	// EventBatch bounds how many core events one ledger transaction books
	// (default 512).
	EventBatch int
	// RefDataTTL is how long instrument and account data from listing is
	// cached (default 30s).
	RefDataTTL time.Duration
	// OutboxInterval is how often the outbox worker looks for due commands
	// when not woken (default 500ms); RetryMax caps its backoff (default 30s).
	OutboxInterval time.Duration
	RetryMax       time.Duration
	// ConsumerName keys the stored event-log position (default "core").
	ConsumerName string
}

// Service is the settlement service: the four gRPC services, the core event
// consumer and the outbox worker.
type Service struct {
	cfg    Config
	db     *sqlstore.DB
	ledger *ledger.Ledger
	store  *store
	ref    *refData
	logger *slog.Logger
	now    func() time.Time
	loc    *time.Location

	members  memberServer
	banks    bankServer
	admin    adminServer
	internal internalServer

	outboxWake chan struct{}
	instrMu    sync.Mutex
	instrWake  chan struct{} // closed and replaced when instructions are created

	// testHookBeforeCommit, when set, runs inside the booking transaction
	// after the postings are written and before commit (crash tests).
	testHookBeforeCommit func(seq int64) error
	// onBooked, when set, is told when a batch of events has committed
	// (latency measurement in the benchmark).
	onBooked func(batch []eventItem, committed time.Time)
}

// New migrates the database and returns the service. It does not start the
// consumer or the outbox worker: Run does.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Listing == nil || cfg.Core == nil || cfg.Currencies == nil {
		return nil, errors.New("settlement: Config needs DB, Listing, Core and Currencies")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.TimeZone == nil {
		loc, err := time.LoadLocation(DefaultTimeZone)
		if err != nil {
			return nil, fmt.Errorf("settlement: time zone: %w", err)
		}
		cfg.TimeZone = loc
	}
	if cfg.MaxStatementBytes <= 0 {
		cfg.MaxStatementBytes = bankstatement.DefaultMaxBytes
	}
	if cfg.MatchToleranceDays <= 0 {
		cfg.MatchToleranceDays = recon.DefaultToleranceDays
	}
	if cfg.EventBatch <= 0 {
		cfg.EventBatch = 512
	}
	if cfg.RefDataTTL <= 0 {
		cfg.RefDataTTL = 30 * time.Second
	}
	if cfg.OutboxInterval <= 0 {
		cfg.OutboxInterval = 500 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	if cfg.ConsumerName == "" {
		cfg.ConsumerName = "core"
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	if err := cfg.DB.Migrate(ctx, "settlement", sub); err != nil {
		return nil, err
	}
	l, err := ledger.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, db: cfg.DB, ledger: l, store: st, logger: cfg.Logger, now: cfg.Clock, loc: cfg.TimeZone,
		outboxWake: make(chan struct{}, 1), instrWake: make(chan struct{}),
	}
	s.ref = newRefData(cfg.Listing, cfg.RefDataTTL)
	s.members = memberServer{s: s}
	s.banks = bankServer{s: s}
	s.admin = adminServer{s: s}
	s.internal = internalServer{s: s}
	return s, nil
}

// Register adds the four gRPC services to a server built with Policy().
func (s *Service) Register(g grpc.ServiceRegistrar) {
	settlementv1.RegisterSettlementServiceServer(g, &s.members)
	settlementv1.RegisterBankServiceServer(g, &s.banks)
	settlementv1.RegisterSettlementAdminServiceServer(g, &s.admin)
	settlementv1.RegisterSettlementInternalServiceServer(g, &s.internal)
}

// Members, Banks, Admin and Internal return the gRPC implementations, for
// in-process callers and tests (the first three read the caller from
// auth.FromContext; Internal relies on Policy, enforced by the server's
// interceptors, to admit only ROLE_SERVICE).
func (s *Service) Members() settlementv1.SettlementServiceServer          { return &s.members }
func (s *Service) Banks() settlementv1.BankServiceServer                  { return &s.banks }
func (s *Service) Admin() settlementv1.SettlementAdminServiceServer       { return &s.admin }
func (s *Service) Internal() settlementv1.SettlementInternalServiceServer { return &s.internal }

// Run consumes the core's event log, delivers outbox commands and recovers
// interrupted withdrawals until ctx is done; it returns nil on cancellation.
// Run one settlement process per database: it is the ledger's single writer
// (ids are allocated in memory; a second writer would fail on primary keys,
// never double-book, but it would fail).
func (s *Service) Run(ctx context.Context) error {
	if err := s.forwardFX(ctx); err != nil {
		// Cancelled while starting: a shutdown, not a failure (the next
		// start forwards again; the outbox keys make it once).
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("settlement: forward FX rates and preferences to the core: %w", err)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	for _, loop := range []func(context.Context) error{s.consume, s.runOutbox, s.recoverWithdrawals} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(ctx); err != nil && ctx.Err() == nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

var (
	operator = []typev1.Role{typev1.Role_ROLE_OPERATOR}
	member   = []typev1.Role{typev1.Role_ROLE_MEMBER}
	bank     = []typev1.Role{typev1.Role_ROLE_CLEARING_BANK}
	service  = []typev1.Role{typev1.Role_ROLE_SERVICE}
)

// Policy says who may call each method of the four settlement services.
// Object-level checks (a member's own accounts, a bank's own instructions)
// are in the handlers and answer NotFound for another party's object.
func Policy() auth.Policy {
	m := func(desc grpc.ServiceDesc, name string) string { return "/" + desc.ServiceName + "/" + name }
	st, bk, ad := settlementv1.SettlementService_ServiceDesc, settlementv1.BankService_ServiceDesc, settlementv1.SettlementAdminService_ServiceDesc
	in := settlementv1.SettlementInternalService_ServiceDesc
	memberOrOperator := []typev1.Role{typev1.Role_ROLE_MEMBER, typev1.Role_ROLE_OPERATOR}
	return auth.Policy{
		m(st, "GetAccountBalances"):   memberOrOperator,
		m(st, "ListPostings"):         memberOrOperator,
		m(st, "GetStatement"):         memberOrOperator,
		m(st, "RequestWithdrawal"):    member,
		m(st, "GetTradeSettlement"):   {typev1.Role_ROLE_MEMBER, typev1.Role_ROLE_OPERATOR, typev1.Role_ROLE_SERVICE},
		m(st, "ListTradeSettlements"): memberOrOperator,
		m(st, "SetFxPreference"):      member,

		m(bk, "PostDepositNotice"):         bank,
		m(bk, "StreamInstructions"):        bank,
		m(bk, "AcknowledgeInstruction"):    bank,
		m(bk, "ConfirmInstruction"):        bank,
		m(bk, "RejectInstruction"):         bank,
		m(bk, "ImportStatement"):           bank,
		m(bk, "UploadStatement"):           bank,
		m(bk, "GetReconciliationReport"):   {typev1.Role_ROLE_CLEARING_BANK, typev1.Role_ROLE_OPERATOR},
		m(bk, "ListReconciliationReports"): {typev1.Role_ROLE_CLEARING_BANK, typev1.Role_ROLE_OPERATOR},

		m(ad, "SetFeeSchedule"):     operator,
		m(ad, "GetFeeSchedule"):     {typev1.Role_ROLE_OPERATOR, typev1.Role_ROLE_MEMBER, typev1.Role_ROLE_SERVICE},
		m(ad, "PublishFxRate"):      {typev1.Role_ROLE_OPERATOR, typev1.Role_ROLE_CLEARING_BANK},
		m(ad, "ListFxRates"):        {typev1.Role_ROLE_OPERATOR, typev1.Role_ROLE_MEMBER, typev1.Role_ROLE_CLEARING_BANK, typev1.Role_ROLE_SERVICE},
		m(ad, "RunSettlementCycle"): operator,
		m(ad, "CheckLedger"):        operator,
		m(ad, "PostCorrection"):     operator,
		m(ad, "ListParkedEvents"):   operator,
		m(ad, "RetryParkedEvent"):   operator,
		m(ad, "ReissueInstruction"): operator,

		// The receipts service reports goods legs; no participant may.
		m(in, "RecordReceiptsLeg"): service,
	}
}

func (s *Service) wakeOutbox() {
	select {
	case s.outboxWake <- struct{}{}:
	default:
	}
}

// instructionsCreated wakes every instruction stream.
func (s *Service) instructionsCreated() {
	s.instrMu.Lock()
	close(s.instrWake)
	s.instrWake = make(chan struct{})
	s.instrMu.Unlock()
}

func (s *Service) instructionWaiter() <-chan struct{} {
	s.instrMu.Lock()
	defer s.instrMu.Unlock()
	return s.instrWake
}
