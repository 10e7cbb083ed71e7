package main

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/bankstatement"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	"github.com/bcx-exchange/bcx/services/settlement"
)

// runStatement is `bcx statement inspect FILE` (parse and print as JSON,
// import nothing) and `bcx statement import FILE` (stream it to a running
// exchange as a clearing bank and print the reconciliation report).
func runStatement(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "import" {
		fs := newFlagSet("statement import")
		addr := fs.String("addr", envOr("BCX_ADDR", "127.0.0.1:7070"), "exchange gRPC address (env BCX_ADDR)")
		token := fs.String("token", envOr("BCX_TOKEN", ""), "the clearing bank's bearer token (env BCX_TOKEN)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *token == "" {
			return fmt.Errorf("statement import: --token (or BCX_TOKEN) is required: the bank's token")
		}
		// Plaintext is for a loopback dev exchange; production puts TLS in front.
		// The file goes up in 1 MiB chunks (UploadStatement); the answer, with
		// up to 10,000 breaks per list, can pass gRPC's 4 MiB receive default.
		conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(auth.BearerCredentials{Token: *token, Insecure: true}),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
		if err != nil {
			return err
		}
		defer conn.Close()
		return settlement.ImportFileMain(ctx, settlementv1.NewBankServiceClient(conn), fs.Args(), stdout)
	}
	return bankstatement.Main(args, stdout)
}
