package settlement

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"

	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
)

// UploadChunkBytes is the chunk size Upload sends: the most UploadStatement
// accepts in one message.
const UploadChunkBytes = 1 << 20

// ImportFileMain is `bcx statement import FILE`: it streams a statement file
// to BankService.UploadStatement through c (which carries the clearing
// bank's token), so a file of any size up to the service's statement limit
// goes through, and prints the response — report id, whether it was
// imported now, and the reconciliation report — as one JSON object. A file
// the service refuses fails with the service's reason.
func ImportFileMain(ctx context.Context, c settlementv1.BankServiceClient, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: bcx statement import FILE")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("import %s: not a regular file", args[0])
	}
	resp, err := Upload(ctx, c, filepath.Base(args[0]), fi.Size(), f)
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

// Upload sends a statement to BankService.UploadStatement: the metadata
// (fileName, and size when it is known, else 0), then r in chunks of
// UploadChunkBytes. If the service refuses the upload before the end (the
// file passes its limit), the service's error is returned.
func Upload(ctx context.Context, c settlementv1.BankServiceClient, fileName string, size int64, r io.Reader) (*settlementv1.UploadStatementResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream if reading r fails
	stream, err := c.UploadStatement(ctx)
	if err != nil {
		return nil, err
	}
	send := func(m *settlementv1.UploadStatementRequest) (stop bool, err error) {
		err = stream.Send(m)
		if errors.Is(err, io.EOF) {
			return true, nil // the service ended the call: CloseAndRecv has its status
		}
		return false, err
	}
	stop, err := send(&settlementv1.UploadStatementRequest{Part: &settlementv1.UploadStatementRequest_Metadata{
		Metadata: &settlementv1.UploadStatementMetadata{FileName: fileName, SizeBytes: size}}})
	if err != nil {
		return nil, err
	}
	for !stop {
		// A new buffer each time: gRPC may still hold a message after Send.
		buf := make([]byte, UploadChunkBytes)
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if stop, err = send(&settlementv1.UploadStatementRequest{Part: &settlementv1.UploadStatementRequest_Chunk{Chunk: buf[:n]}}); err != nil {
				return nil, err
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	return stream.CloseAndRecv()
}
