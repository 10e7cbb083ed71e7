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
	"time"

	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/server"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	"github.com/bcx-exchange/bcx/services/listing"
)

// devConfig is `bcx dev`'s configuration: flags over environment over defaults.
type devConfig struct {
	Listen  string
	DataDir string
}

const credentialsFile = "dev-credentials.json"

func runDev(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	cfg := devConfig{}
	fs := newFlagSet("dev")
	fs.StringVar(&cfg.Listen, "listen", envOr("BCX_LISTEN", "127.0.0.1:7070"), "gRPC listen address (env BCX_LISTEN)")
	fs.StringVar(&cfg.DataDir, "data-dir", envOr("BCX_DATA_DIR", ".bcx-dev"), "data directory, kept across restarts (env BCX_DATA_DIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	start := time.Now()

	db, err := sqlstore.Open(ctx, filepath.Join(cfg.DataDir, "listing.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	currencies := money.NewRegistry()
	store, err := listing.NewStore(ctx, db)
	if err != nil {
		return err
	}
	verifier := listing.NewVerifier(store, 5*time.Second)
	listingSrv := listing.NewServer(store, currencies, verifier, logger)

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

	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	creds.Listen = lis.Addr().String()
	if err := writeFileAtomic(credsPath, creds); err != nil {
		return err
	}

	srv := server.New(logger, verifier, listing.Policy())
	listingv1.RegisterListingServiceServer(srv.GRPC, listingSrv)

	printBanner(stdout, creds, credsPath)
	logger.Info("bcx dev ready", "listen", creds.Listen, "data_dir", cfg.DataDir, "startup", time.Since(start).Round(time.Millisecond))
	return srv.Serve(ctx, lis, 10*time.Second)
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
