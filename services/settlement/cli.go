package settlement

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"

	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
)

// ImportFileMain is `bcx statement import FILE`: it sends a statement file
// to BankService.ImportStatement through c (which carries the clearing
// bank's token) and prints the response — report id, whether it was
// imported now, and the reconciliation report — as one JSON object. A file
// the service refuses fails with the service's reason.
func ImportFileMain(ctx context.Context, c settlementv1.BankServiceClient, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: bcx statement import FILE")
	}
	content, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	resp, err := c.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: content, FileName: filepath.Base(args[0])})
	if err != nil {
		return fmt.Errorf("import %s: %w", args[0], err)
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, string(b))
	return err
}
