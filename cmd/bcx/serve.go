package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/server"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
)

// serveConfig is `bcx serve`'s configuration.
type serveConfig struct {
	Listen      string
	PostgresURL string
	Bootstrap   bool
}

func runServe(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	if len(args) == 0 {
		return fmt.Errorf("serve: name a service (listing)")
	}
	name := args[0]
	cfg := serveConfig{}
	fs := newFlagSet("serve " + name)
	fs.StringVar(&cfg.Listen, "listen", envOr("BCX_LISTEN", "127.0.0.1:7070"), "gRPC listen address (env BCX_LISTEN)")
	fs.StringVar(&cfg.PostgresURL, "postgres-url", envOr("BCX_POSTGRES_URL", ""), "PostgreSQL URL (env BCX_POSTGRES_URL)")
	fs.BoolVar(&cfg.Bootstrap, "bootstrap", false, "on an empty database, create operator OPS and print its token once")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if cfg.PostgresURL == "" {
		return fmt.Errorf("serve %s: --postgres-url (or BCX_POSTGRES_URL) is required", name)
	}
	switch name {
	case "listing":
		return serveListing(ctx, cfg, stdout, logger)
	}
	return fmt.Errorf("serve: unknown service %q (implemented: listing)", name)
}

func serveListing(ctx context.Context, cfg serveConfig, stdout io.Writer, logger *slog.Logger) error {
	db, err := sqlstore.Open(ctx, cfg.PostgresURL)
	if err != nil {
		return err
	}
	defer db.Close()
	store, err := listing.NewStore(ctx, db)
	if err != nil {
		return err
	}
	verifier := listing.NewVerifier(store, 5*time.Second)
	svc := listing.NewServer(store, money.NewRegistry(), verifier, logger)
	if cfg.Bootstrap {
		if err := bootstrapOperator(ctx, store, svc, stdout); err != nil {
			return err
		}
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := server.New(logger, verifier, listing.Policy())
	listingv1.RegisterListingServiceServer(srv.GRPC, svc)
	logger.Info("bcx listing ready", "listen", lis.Addr().String())
	return srv.Serve(ctx, lis, 10*time.Second)
}

// bootstrapOperator gives a brand-new deployment its first operator.
func bootstrapOperator(ctx context.Context, store *listing.Store, svc *listing.Server, stdout io.Writer) error {
	var n int
	if err := store.InTx(ctx, func(q listing.Q) (err error) { n, err = store.CountParticipants(ctx, q); return err }); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	opCtx := auth.WithPrincipal(ctx, auth.Principal{ParticipantID: listing.DemoOperator, Role: typev1.Role_ROLE_OPERATOR})
	if _, err := svc.CreateParticipant(opCtx, &listingv1.CreateParticipantRequest{Id: listing.DemoOperator,
		Name: "Exchange Operations", Role: typev1.Role_ROLE_OPERATOR}); err != nil {
		return err
	}
	resp, err := svc.IssueCredential(opCtx, &listingv1.IssueCredentialRequest{ParticipantId: listing.DemoOperator, Label: "bootstrap"})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bootstrap operator %s token (shown once): %s\n", listing.DemoOperator, resp.Token)
	return nil
}
