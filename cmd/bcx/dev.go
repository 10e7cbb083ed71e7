package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/server"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	"github.com/bcx-exchange/bcx/services/listing"
	"github.com/bcx-exchange/bcx/services/matching"
	"github.com/bcx-exchange/bcx/services/receipts"
	"github.com/bcx-exchange/bcx/services/settlement"
)

// devConfig is `bcx dev`'s configuration: flags over environment over defaults.
type devConfig struct {
	Listen     string
	DataDir    string
	Currencies string
}

const credentialsFile = "dev-credentials.json"

// runDev runs the whole exchange in one process: the four services on one
// gRPC server, each with its own store under the data directory (SQLite
// files for listing, receipts and settlement; the journal for matching),
// calling each other over an in-process connection with a service token, as
// they would over the network when run apart.
func runDev(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	cfg := devConfig{}
	fs := newFlagSet("dev")
	fs.StringVar(&cfg.Listen, "listen", envOr("BCX_LISTEN", "127.0.0.1:7070"), "gRPC listen address (env BCX_LISTEN)")
	fs.StringVar(&cfg.DataDir, "data-dir", envOr("BCX_DATA_DIR", ".bcx-dev"), "data directory, kept across restarts (env BCX_DATA_DIR)")
	fs.StringVar(&cfg.Currencies, "currencies", envOr("BCX_CURRENCIES", ""), currenciesUsage)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	start := time.Now()
	currencies, err := currencyRegistry(cfg.Currencies)
	if err != nil {
		return err
	}
	openDB := func(name string) (*sqlstore.DB, error) {
		return sqlstore.Open(ctx, filepath.Join(cfg.DataDir, name+".db"))
	}

	// Listing first: it is the token verifier for everything else.
	listingDB, err := openDB("listing")
	if err != nil {
		return err
	}
	defer listingDB.Close()
	listingStore, err := listing.NewStore(ctx, listingDB)
	if err != nil {
		return err
	}
	verifier := listing.NewVerifier(listingStore, 5*time.Second)
	listingSrv := listing.NewServer(listingStore, currencies, verifier, logger)
	credsPath := filepath.Join(cfg.DataDir, credentialsFile)
	creds, err := readCredentials(credsPath)
	if err != nil {
		return err
	}
	// Seeding is idempotent; tokens are issued only on the first start and
	// kept in the credentials file (the store holds only their hashes).
	issued, err := listing.SeedDemo(ctx, listingSrv, creds == nil)
	if err != nil {
		return err
	}
	if creds == nil {
		creds = issued
	}
	serviceToken, err := listing.IssueInternalToken(ctx, listingSrv)
	if err != nil {
		return err
	}

	policy := listing.Policy().Merge(matching.Policy()).Merge(receipts.Policy()).Merge(settlement.Policy())
	srv := server.New(logger, verifier, policy, server.ProcessOptions()...)
	listingv1.RegisterListingServiceServer(srv.GRPC, listingSrv)

	// The services' own connection to the exchange, in memory.
	inproc := bufconn.Listen(4 << 20)
	internal, err := grpc.NewClient("passthrough:///bcx-internal",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return inproc.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.BearerCredentials{Token: serviceToken, Insecure: true}))
	if err != nil {
		return err
	}
	defer internal.Close()
	listingClient := listingv1.NewListingServiceClient(internal)
	coreClient := tradingv1.NewCoreServiceClient(internal)

	matchingSvc, err := matching.New(matching.Config{DataDir: filepath.Join(cfg.DataDir, "matching"), Listing: listingClient,
		Logger: logger, Currencies: currencies})
	if err != nil {
		return err
	}
	defer matchingSvc.Close()
	matchingSvc.Register(srv.GRPC)

	settlementDB, err := openDB("settlement")
	if err != nil {
		return err
	}
	defer settlementDB.Close()
	settlementSvc, err := settlement.New(ctx, settlement.Config{DB: settlementDB, Listing: listingClient, Core: coreClient,
		Currencies: currencies, Logger: logger})
	if err != nil {
		return err
	}
	settlementSvc.Register(srv.GRPC)

	receiptsDB, err := openDB("receipts")
	if err != nil {
		return err
	}
	defer receiptsDB.Close()
	receiptsSrv, err := receipts.New(ctx, receipts.Config{DB: receiptsDB, Listing: listingClient, Core: coreClient,
		Settlement: settlementv1.NewSettlementInternalServiceClient(internal), Currencies: currencies, Logger: logger})
	if err != nil {
		return err
	}
	receiptsv1.RegisterReceiptsServiceServer(srv.GRPC, receiptsSrv)

	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	creds.Listen = lis.Addr().String()
	if err := writeFileAtomic(credsPath, creds); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	goRun := func(name string, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	go func() { _ = srv.GRPC.Serve(inproc) }()
	goRun("matching", matchingSvc.Run)
	goRun("settlement", settlementSvc.Run)
	goRun("receipts", receiptsSrv.Run)
	select {
	case <-matchingSvc.Ready():
	case <-time.After(10 * time.Second):
		logger.Warn("matching has not loaded instruments yet; serving anyway")
	case <-ctx.Done():
	}

	printBanner(stdout, creds, credsPath)
	logger.Info("bcx dev ready", "listen", creds.Listen, "data_dir", cfg.DataDir, "startup", time.Since(start).Round(time.Millisecond))
	serveErr := srv.Serve(ctx, lis, 10*time.Second)
	cancel()
	wg.Wait()
	close(errc)
	for err := range errc {
		return err
	}
	return serveErr
}

func readCredentials(path string) (*listing.DevCredentials, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c listing.DevCredentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w (delete the data directory to start afresh)", path, err)
	}
	return &c, nil
}

// writeFileAtomic writes v as JSON, readable by the owner only: it holds
// bearer tokens.
func writeFileAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func printBanner(w io.Writer, c *listing.DevCredentials, path string) {
	fmt.Fprintf(w, "bcx dev: the whole exchange on %s (gRPC, plaintext, reflection on)\n", c.Listen)
	fmt.Fprintf(w, "tokens (also in %s):\n", path)
	row := func(d listing.DevCredential) { fmt.Fprintf(w, "  %-10s %-20s %s\n", d.ParticipantID, d.Role, d.Token) }
	row(c.Operator)
	for _, m := range c.Members {
		row(m)
	}
	row(c.Warehouse)
	row(c.Bank)
	fmt.Fprintf(w, "try: grpcurl -plaintext -H \"authorization: Bearer %s\" %s bcx.listing.v1.ListingService/ListInstruments\n",
		c.Members[0].Token, c.Listen)
}
