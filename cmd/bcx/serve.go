package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/server"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	"github.com/redis/go-redis/v9"

	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	marketdatav1 "github.com/bcx-exchange/bcx/proto/bcx/marketdata/v1"
	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
	"github.com/bcx-exchange/bcx/services/matching"
	"github.com/bcx-exchange/bcx/services/matching/mdfeed"
	"github.com/bcx-exchange/bcx/services/receipts"
	"github.com/bcx-exchange/bcx/services/settlement"
)

// serveConfig is `bcx serve`'s configuration: one service per process.
type serveConfig struct {
	Listen         string
	PostgresURL    string
	DataDir        string
	ListingAddr    string
	CoreAddr       string
	SettlementAddr string
	ServiceToken   string
	RedisURL       string
	Currencies     string
	Snapshots      string
	Bootstrap      bool
}

// currenciesUsage documents the --currencies flag of dev and serve.
const currenciesUsage = "currencies beyond CNY, CNH and USD, as CODE:EXPONENT pairs, e.g. JPY:0,KRW:0 (env BCX_CURRENCIES); " +
	"every service of one exchange needs the same list"

// currencyRegistry is the default currencies plus those configured.
func currencyRegistry(spec string) (*money.Registry, error) {
	r := money.NewRegistry()
	if err := r.AddSpec(spec); err != nil {
		return nil, fmt.Errorf("--currencies: %w", err)
	}
	return r, nil
}

func runServe(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	if len(args) == 0 {
		return fmt.Errorf("serve: name a service (listing, matching, receipts, settlement)")
	}
	name := args[0]
	cfg := serveConfig{}
	fs := newFlagSet("serve " + name)
	fs.StringVar(&cfg.Listen, "listen", envOr("BCX_LISTEN", "127.0.0.1:7070"), "gRPC listen address (env BCX_LISTEN)")
	fs.StringVar(&cfg.PostgresURL, "postgres-url", envOr("BCX_POSTGRES_URL", ""), "PostgreSQL URL (env BCX_POSTGRES_URL): listing, receipts, settlement")
	fs.StringVar(&cfg.DataDir, "data-dir", envOr("BCX_DATA_DIR", "bcx-matching"), "journal and snapshots (env BCX_DATA_DIR): matching")
	fs.StringVar(&cfg.ListingAddr, "listing-addr", envOr("BCX_LISTING_ADDR", "127.0.0.1:7071"), "listing service address (env BCX_LISTING_ADDR)")
	fs.StringVar(&cfg.CoreAddr, "core-addr", envOr("BCX_CORE_ADDR", "127.0.0.1:7072"), "matching service address (env BCX_CORE_ADDR)")
	fs.StringVar(&cfg.SettlementAddr, "settlement-addr", envOr("BCX_SETTLEMENT_ADDR", "127.0.0.1:7074"), "settlement service address (env BCX_SETTLEMENT_ADDR)")
	fs.StringVar(&cfg.ServiceToken, "service-token", envOr("BCX_SERVICE_TOKEN", ""), "token of a ROLE_SERVICE participant for calls between services (env BCX_SERVICE_TOKEN)")
	fs.StringVar(&cfg.RedisURL, "redis-url", envOr("BCX_REDIS_URL", ""), "Redis URL for market data fan-out (env BCX_REDIS_URL): matching publishes, marketdata gateways serve")
	fs.StringVar(&cfg.Currencies, "currencies", envOr("BCX_CURRENCIES", ""), currenciesUsage)
	fs.StringVar(&cfg.Snapshots, "snapshots", envOr("BCX_SNAPSHOTS", "auto"), "where scheduled snapshots are encoded (env BCX_SNAPSHOTS): matching; "+
		"sequencer (orders wait for the encoding), replica (a second core replays the journal: no wait, half a core more) or auto (replica on 4+ CPUs)")
	fs.BoolVar(&cfg.Bootstrap, "bootstrap", false, "listing: on an empty database, create operator OPS and print its token once")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch name {
	case "listing":
		return serveListing(ctx, cfg, stdout, logger)
	case "matching", "receipts", "settlement", "marketdata":
		return serveOther(ctx, name, cfg, logger)
	}
	return fmt.Errorf("serve: unknown service %q (listing, matching, receipts, settlement, marketdata)", name)
}

func openPostgres(ctx context.Context, cfg serveConfig, name string) (*sqlstore.DB, error) {
	if cfg.PostgresURL == "" {
		return nil, fmt.Errorf("serve %s: --postgres-url (or BCX_POSTGRES_URL) is required", name)
	}
	return sqlstore.Open(ctx, cfg.PostgresURL)
}

func serveListing(ctx context.Context, cfg serveConfig, stdout io.Writer, logger *slog.Logger) error {
	db, err := openPostgres(ctx, cfg, "listing")
	if err != nil {
		return err
	}
	defer db.Close()
	store, err := listing.NewStore(ctx, db)
	if err != nil {
		return err
	}
	verifier := listing.NewVerifier(store, 5*time.Second)
	currencies, err := currencyRegistry(cfg.Currencies)
	if err != nil {
		return err
	}
	svc := listing.NewServer(store, currencies, verifier, logger)
	if cfg.Bootstrap {
		if err := bootstrapOperator(ctx, svc, stdout); err != nil {
			return err
		}
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := server.New(logger, verifier, listing.Policy(), server.ProcessOptions()...)
	listingv1.RegisterListingServiceServer(srv.GRPC, svc)
	logger.Info("bcx listing ready", "listen", lis.Addr().String())
	return srv.Serve(ctx, lis, 10*time.Second)
}

// dialService connects to another bcx service. Plaintext: in production the
// services talk over a private network or a TLS-terminating mesh.
func dialService(addr, token string) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.BearerCredentials{Token: token, Insecure: true}))
	}
	return grpc.NewClient(addr, opts...)
}

// serveOther runs matching, receipts or settlement alone: tokens are verified
// through the listing service, and calls to other services carry the service
// token.
func serveOther(ctx context.Context, name string, cfg serveConfig, logger *slog.Logger) error {
	if cfg.ServiceToken == "" {
		return fmt.Errorf("serve %s: --service-token (or BCX_SERVICE_TOKEN) is required: a token of a ROLE_SERVICE participant", name)
	}
	anon, err := dialService(cfg.ListingAddr, "")
	if err != nil {
		return err
	}
	defer anon.Close()
	verifier := listing.NewRemoteVerifier(listingv1.NewListingServiceClient(anon), 5*time.Second)
	asService := func(addr string) (*grpc.ClientConn, error) { return dialService(addr, cfg.ServiceToken) }
	listingConn, err := asService(cfg.ListingAddr)
	if err != nil {
		return err
	}
	defer listingConn.Close()
	who, err := listingv1.NewListingServiceClient(listingConn).WhoAmI(ctx, &listingv1.WhoAmIRequest{})
	if err != nil {
		return fmt.Errorf("serve %s: the service token does not work against listing at %s: %w", name, cfg.ListingAddr, err)
	}
	if who.Participant.Role != typev1.Role_ROLE_SERVICE {
		return fmt.Errorf("serve %s: the service token belongs to %s, a %s, not a ROLE_SERVICE participant", name, who.Participant.Id, who.Participant.Role)
	}
	listingClient := listingv1.NewListingServiceClient(listingConn)
	currencies, err := currencyRegistry(cfg.Currencies)
	if err != nil {
		return err
	}

	var (
		policy   auth.Policy
		register func(*grpc.Server)
		run      func(context.Context) error
	)
	var feed mdfeed.Feed // nil: in-process (matching's default)
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("serve %s: --redis-url: %w", name, err)
		}
		rc := redis.NewClient(opts)
		defer rc.Close()
		feed = mdfeed.NewRedis(rc, "bcx:")
	}
	switch name {
	case "marketdata":
		// A gateway: serves market data from Redis, so many of them can stand
		// in front of one matching core.
		if feed == nil {
			return fmt.Errorf("serve marketdata: --redis-url (or BCX_REDIS_URL) is required")
		}
		md := matching.NewMarketDataServer(feed)
		policy = matching.MarketDataPolicy()
		register = func(g *grpc.Server) { marketdatav1.RegisterMarketDataServiceServer(g, md) }
		run = func(ctx context.Context) error { <-ctx.Done(); return nil }
	case "matching":
		snaps, err := matching.ParseSnapshotMode(cfg.Snapshots)
		if err != nil {
			return fmt.Errorf("serve matching: %w", err)
		}
		svc, err := matching.New(matching.Config{DataDir: cfg.DataDir, Listing: listingClient, Logger: logger, Currencies: currencies, Feed: feed,
			Snapshots: snaps})
		if err != nil {
			return err
		}
		defer svc.Close()
		policy, register, run = matching.Policy(), func(g *grpc.Server) { svc.Register(g) }, svc.Run
	case "receipts", "settlement":
		db, err := openPostgres(ctx, cfg, name)
		if err != nil {
			return err
		}
		defer db.Close()
		coreConn, err := asService(cfg.CoreAddr)
		if err != nil {
			return err
		}
		defer coreConn.Close()
		core := tradingv1.NewCoreServiceClient(coreConn)
		if name == "settlement" {
			svc, err := settlement.New(ctx, settlement.Config{DB: db, Listing: listingClient, Core: core, Currencies: currencies, Logger: logger})
			if err != nil {
				return err
			}
			policy, register, run = settlement.Policy(), func(g *grpc.Server) { svc.Register(g) }, svc.Run
			break
		}
		settlementConn, err := asService(cfg.SettlementAddr)
		if err != nil {
			return err
		}
		defer settlementConn.Close()
		svc, err := receipts.New(ctx, receipts.Config{DB: db, Listing: listingClient, Core: core,
			Settlement: settlementv1.NewSettlementInternalServiceClient(settlementConn), Currencies: currencies, Logger: logger})
		if err != nil {
			return err
		}
		policy, register, run = receipts.Policy(), func(g *grpc.Server) { receiptsv1.RegisterReceiptsServiceServer(g, svc) }, svc.Run
	}

	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := server.New(logger, verifier, policy, server.ProcessOptions()...)
	register(srv.GRPC)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var runErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := run(ctx); err != nil && ctx.Err() == nil {
			runErr = err
			cancel()
		}
	}()
	logger.Info("bcx "+name+" ready", "listen", lis.Addr().String())
	serveErr := srv.Serve(ctx, lis, 10*time.Second)
	cancel()
	wg.Wait()
	if runErr != nil {
		return runErr
	}
	return serveErr
}

// bootstrapOperator gives a deployment its first operator: it creates
// participant OPS if missing and, when OPS has no working token, issues one
// and prints it once. Each step is idempotent, so a crash half-way is
// completed by the next start with --bootstrap.
func bootstrapOperator(ctx context.Context, svc *listing.Server, stdout io.Writer) error {
	opCtx := auth.WithPrincipal(ctx, auth.Principal{ParticipantID: listing.DemoOperator, Role: typev1.Role_ROLE_OPERATOR})
	if _, err := svc.CreateParticipant(opCtx, &listingv1.CreateParticipantRequest{IdempotencyKey: "bootstrap/operator",
		Id: listing.DemoOperator, Name: "Exchange Operations", Role: typev1.Role_ROLE_OPERATOR}); err != nil && status.Code(err) != codes.InvalidArgument {
		return err
	}
	creds, err := svc.ListCredentials(opCtx, &listingv1.ListCredentialsRequest{ParticipantId: listing.DemoOperator, PageSize: 500})
	if err != nil {
		return err
	}
	for _, c := range creds.Credentials {
		if c.RevokedAt == nil || c.RevokedAt.AsTime().After(time.Now()) {
			return nil // OPS can already sign in
		}
	}
	resp, err := svc.IssueCredential(opCtx, &listingv1.IssueCredentialRequest{ParticipantId: listing.DemoOperator, Label: "bootstrap"})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bootstrap operator %s token (shown once): %s\n", listing.DemoOperator, resp.Token)
	return nil
}
