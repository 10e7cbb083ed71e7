package settlement_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bcx-exchange/bcx/pkg/bankstatement"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	"github.com/bcx-exchange/bcx/services/settlement"
)

// grpcMessageLimit is the server's message limit (pkg/server): what
// ImportStatement can carry.
const grpcMessageLimit = 16 << 20

// reconScenario is a generated camt.053 of n CNY entries at bank A and the
// ledger's expected movements for it: most match by end-to-end id, every
// 500th entry (from the 8th) is one the ledger does not expect, every 500th
// (from the 10th) one the bank booked 0.01 off, and three movements the
// bank never booked.
type reconScenario struct {
	content                                 []byte
	n, missing, mismatched, unmatchedLedger int
	// unexplained is the closing balance less what the ledger expects.
	unexplained string
}

const scenarioOpening = 1_000_000_000_00 // GenerateCamt053's default, in fen

func newReconScenario(t *testing.T, e *env, n int) *reconScenario {
	t.Helper()
	sc := &reconScenario{n: n}
	var (
		ms []settlement.ExpectedMovement
		i  int
		// closing - expected = opening + unexpected entries - mismatch deltas - extra movements
		diff int64 = scenarioOpening
	)
	hook := func(en bankstatement.Entry) {
		defer func() { i++ }()
		amt, err := en.AmountMinor(2)
		if err != nil {
			t.Fatal(err)
		}
		if en.Direction == bankstatement.Debit {
			amt = -amt
		}
		switch i % 500 {
		case 7:
			sc.missing++
			diff += amt
			return
		case 9:
			sc.mismatched++
			amt++
			diff--
		}
		ms = append(ms, settlement.ExpectedMovement{AmountMinor: amt, EndToEndID: en.EndToEndID, ValueDate: en.ValueDate.String()})
	}
	var buf bytes.Buffer
	if err := bankstatement.GenerateCamt053(&buf, n, 42, bankstatement.WithEntryHook(hook)); err != nil {
		t.Fatal(err)
	}
	for k, a := range []int64{123_45, -67_89, 1_000_00} {
		ms = append(ms, settlement.ExpectedMovement{AmountMinor: a, EndToEndID: fmt.Sprintf("NEVER-BOOKED-%d", k), ValueDate: "2026-01-14"})
		diff -= a
		sc.unmatchedLedger++
	}
	settlement.ExpectMovements(t, e.svc, bankA, "CNY", ms)
	sc.content = buf.Bytes()
	sign := ""
	if diff < 0 {
		sign, diff = "-", -diff
	}
	sc.unexplained = fmt.Sprintf("%s%d.%02d", sign, diff/100, diff%100)
	return sc
}

// check asserts a response reconciles the scenario, and that the store holds
// every match.
func (sc *reconScenario) check(t *testing.T, e *env, reportID string, imported bool, reports []*settlementv1.ReconciliationReport) {
	t.Helper()
	if !imported || len(reports) != 1 || reports[0].ReportId != reportID {
		t.Fatalf("imported %v, reports %d", imported, len(reports))
	}
	r := reports[0]
	if r.Format != "camt.053" || r.Currency != "CNY" || r.BalanceCheck != "consistent" || r.BankParticipantId != bankA {
		t.Fatalf("report header = %v %v %v %v", r.Format, r.Currency, r.BalanceCheck, r.BankParticipantId)
	}
	if len(r.UnmatchedBankEntries) != sc.missing || len(r.AmountMismatches) != sc.mismatched ||
		len(r.UnmatchedLedgerMovements) != sc.unmatchedLedger {
		t.Fatalf("breaks: %d unmatched bank entries, %d amount mismatches, %d unmatched ledger movements; want %d, %d, %d",
			len(r.UnmatchedBankEntries), len(r.AmountMismatches), len(r.UnmatchedLedgerMovements), sc.missing, sc.mismatched, sc.unmatchedLedger)
	}
	if want := min(sc.n-sc.missing-sc.mismatched, 1000); len(r.Matched) != want {
		t.Fatalf("%d matched in the response, want %d", len(r.Matched), want)
	}
	if got := r.UnexplainedDifference.GetAmount(); got != sc.unexplained {
		t.Fatalf("unexplained difference %s, want %s", got, sc.unexplained)
	}
	nReports, nMatches := settlement.ReconCounts(t, e.svc)
	if nReports != 1 || nMatches != sc.n-sc.missing {
		t.Fatalf("stored %d reports, %d matches; want 1, %d", nReports, nMatches, sc.n-sc.missing)
	}
}

// upload streams content through UploadStatement in chunks of chunk bytes,
// declaring size (0: undeclared).
func upload(ctx context.Context, c settlementv1.BankServiceClient, content []byte, size int64, chunk int) (*settlementv1.UploadStatementResponse, error) {
	stream, err := c.UploadStatement(ctx)
	if err != nil {
		return nil, err
	}
	msgs := []*settlementv1.UploadStatementRequest{{Part: &settlementv1.UploadStatementRequest_Metadata{
		Metadata: &settlementv1.UploadStatementMetadata{FileName: "test.xml", SizeBytes: size}}}}
	for len(content) > 0 {
		n := min(chunk, len(content))
		msgs = append(msgs, &settlementv1.UploadStatementRequest{Part: &settlementv1.UploadStatementRequest_Chunk{Chunk: content[:n]}})
		content = content[n:]
	}
	for _, m := range msgs {
		if err := stream.Send(m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
	}
	return stream.CloseAndRecv()
}

func wantField(t *testing.T, err error, code codes.Code, field, reason string) {
	t.Helper()
	st := wantCode(t, err, code)
	var gotField, gotReason string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			if len(d.FieldViolations) > 0 {
				gotField = d.FieldViolations[0].Field
			}
		case *errdetails.ErrorInfo:
			gotReason = d.Reason
		}
	}
	if gotField != field || (reason != "" && gotReason != reason) {
		t.Fatalf("%v: field %q reason %q, want %q %q", err, gotField, gotReason, field, reason)
	}
}

// TestImportSmallStatement is the scenario through ImportStatement, the
// file in one message; the same file through UploadStatement is then a
// re-import, answered with the same reports and changing nothing.
func TestImportSmallStatement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sc := newReconScenario(t, e, 1200)
		resp := must[*settlementv1.ImportStatementResponse](t)(e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: sc.content}))
		sc.check(t, e, resp.ReportId, resp.Imported, resp.Reports)

		again := must[*settlementv1.UploadStatementResponse](t)(upload(ctx, e.bankA.Bank, sc.content, int64(len(sc.content)), 100<<10))
		if again.Imported || again.ReportId != resp.ReportId || len(again.Reports) != 1 || !proto.Equal(again.Report, resp.Report) {
			t.Fatalf("upload after import = %v %v", again.Imported, again.ReportId)
		}
		if n, m := settlement.ReconCounts(t, e.svc); n != 1 || m != sc.n-sc.missing {
			t.Fatalf("after the re-upload: %d reports, %d matches", n, m)
		}
	})
}

// TestUploadLargeStatement streams a camt.053 larger than the gRPC message
// limit, which ImportStatement cannot carry, and it reconciles as the small
// one does through ImportStatement; uploading it again changes nothing.
func TestUploadLargeStatement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sc := newReconScenario(t, e, 34_000)
		if len(sc.content) <= grpcMessageLimit {
			t.Fatalf("the statement is %d bytes: not above the %d-byte message limit", len(sc.content), grpcMessageLimit)
		}
		// The unary RPC cannot carry it (the client's own send limit is
		// unbounded by default: the server refuses the message).
		_, err := e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: sc.content})
		wantCode(t, err, codes.ResourceExhausted)

		// Through the client helper `bcx statement import` uses.
		resp := must[*settlementv1.UploadStatementResponse](t)(settlement.Upload(ctx, e.bankA.Bank, "big.xml", int64(len(sc.content)), bytes.NewReader(sc.content)))
		sc.check(t, e, resp.ReportId, resp.Imported, resp.Reports)
		if !proto.Equal(resp.Report, resp.Reports[0]) {
			t.Fatal("report differs from reports[0]")
		}
		got := must[*settlementv1.GetReconciliationReportResponse](t)(e.bankA.Bank.GetReconciliationReport(ctx, &settlementv1.GetReconciliationReportRequest{ReportId: resp.ReportId}))
		if !proto.Equal(got.Report, resp.Report) {
			t.Fatal("the stored report differs from the answer")
		}

		// Again, in other chunks and without a declared size: the same
		// content, so the same report, and nothing changes.
		again := must[*settlementv1.UploadStatementResponse](t)(upload(ctx, e.bankA.Bank, sc.content, 0, 300<<10))
		if again.Imported || again.ReportId != resp.ReportId || !proto.Equal(again.Report, resp.Report) {
			t.Fatalf("re-upload = %v %v", again.Imported, again.ReportId)
		}
		if n, m := settlement.ReconCounts(t, e.svc); n != 1 || m != sc.n-sc.missing {
			t.Fatalf("after the re-upload: %d reports, %d matches", n, m)
		}
	})
}

// TestUploadRefusals: an upload over the statement limit is refused while it
// is received, whether the size is declared or not; a broken stream is
// refused naming the field; a bad file is refused as ImportStatement refuses
// it; only banks may upload. Nothing is stored.
func TestUploadRefusals(t *testing.T) {
	const limit = 256 << 10
	small := func(c *settlement.Config) { c.MaxStatementBytes = limit }
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var buf bytes.Buffer
		if err := bankstatement.GenerateCamt053(&buf, 1000, 7); err != nil {
			t.Fatal(err)
		}
		big := buf.Bytes()
		if len(big) <= limit {
			t.Fatalf("%d bytes is not over the limit", len(big))
		}

		t.Run("over the limit, size undeclared", func(t *testing.T) {
			_, err := upload(ctx, e.bankA.Bank, big, 0, 64<<10)
			wantField(t, err, codes.InvalidArgument, "chunk", "STATEMENT_TOO_LARGE")
		})
		t.Run("over the limit, size declared", func(t *testing.T) {
			stream := must[settlementv1.BankService_UploadStatementClient](t)(e.bankA.Bank.UploadStatement(ctx))
			if err := stream.Send(&settlementv1.UploadStatementRequest{Part: &settlementv1.UploadStatementRequest_Metadata{
				Metadata: &settlementv1.UploadStatementMetadata{SizeBytes: int64(len(big))}}}); err != nil {
				t.Fatal(err)
			}
			// Refused on the metadata alone: no chunk needed.
			_, err := stream.CloseAndRecv()
			wantField(t, err, codes.InvalidArgument, "metadata.size_bytes", "STATEMENT_TOO_LARGE")
			_, err = settlement.Upload(ctx, e.bankA.Bank, "big.xml", int64(len(big)), bytes.NewReader(big))
			wantField(t, err, codes.InvalidArgument, "metadata.size_bytes", "STATEMENT_TOO_LARGE")
		})
		t.Run("refused while sending", func(t *testing.T) {
			// A client that never stops: the service ends the call once the
			// limit is passed, long before the client would stop.
			stream := must[settlementv1.BankService_UploadStatementClient](t)(e.bankA.Bank.UploadStatement(ctx))
			if err := stream.Send(&settlementv1.UploadStatementRequest{Part: &settlementv1.UploadStatementRequest_Metadata{
				Metadata: &settlementv1.UploadStatementMetadata{}}}); err != nil {
				t.Fatal(err)
			}
			chunk := bytes.Repeat([]byte("<Ntry/>\n"), (64<<10)/8)
			sent, cutOff := 0, false
			for sent < 256<<20 {
				err := stream.Send(&settlementv1.UploadStatementRequest{Part: &settlementv1.UploadStatementRequest_Chunk{Chunk: chunk}})
				if errors.Is(err, io.EOF) {
					cutOff = true
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				sent += len(chunk)
			}
			_, err := stream.CloseAndRecv()
			t.Logf("cut off after %d bytes", sent)
			if !cutOff || sent >= 64<<20 {
				t.Fatalf("the service let the client send %d bytes (cut off: %v)", sent, cutOff)
			}
			wantField(t, err, codes.InvalidArgument, "chunk", "STATEMENT_TOO_LARGE")
		})
		t.Run("broken streams", func(t *testing.T) {
			chunkFirst := func() error {
				stream := must[settlementv1.BankService_UploadStatementClient](t)(e.bankA.Bank.UploadStatement(ctx))
				_ = stream.Send(&settlementv1.UploadStatementRequest{Part: &settlementv1.UploadStatementRequest_Chunk{Chunk: []byte("x")}})
				_, err := stream.CloseAndRecv()
				return err
			}
			wantField(t, chunkFirst(), codes.InvalidArgument, "metadata", "")
			empty := func() error {
				stream := must[settlementv1.BankService_UploadStatementClient](t)(e.bankA.Bank.UploadStatement(ctx))
				_, err := stream.CloseAndRecv()
				return err
			}
			wantField(t, empty(), codes.InvalidArgument, "metadata", "")
			twoMetadata := func() error {
				stream := must[settlementv1.BankService_UploadStatementClient](t)(e.bankA.Bank.UploadStatement(ctx))
				md := &settlementv1.UploadStatementRequest{Part: &settlementv1.UploadStatementRequest_Metadata{Metadata: &settlementv1.UploadStatementMetadata{}}}
				_ = stream.Send(md)
				_ = stream.Send(md)
				_, err := stream.CloseAndRecv()
				return err
			}
			wantField(t, twoMetadata(), codes.InvalidArgument, "metadata", "")
			_, err := upload(ctx, e.bankA.Bank, bytes.Repeat([]byte(" "), 1<<20+1), 0, 1<<20+1)
			wantField(t, err, codes.InvalidArgument, "chunk", "")
			small := fixture(t, "camt/camt054.v2.xml")
			_, err = upload(ctx, e.bankA.Bank, small, int64(len(small))+1, 1<<10)
			wantField(t, err, codes.InvalidArgument, "metadata.size_bytes", "")
		})
		t.Run("bad file", func(t *testing.T) {
			for name, content := range map[string][]byte{
				"camt.052 namespace": fixture(t, "camt/camt052.v2.xml"),
				"does not add up":    fixture(t, "camt/camt053.v4.xml"),
				"empty":              nil,
			} {
				_, errUnary := e.bankA.Bank.ImportStatement(ctx, &settlementv1.ImportStatementRequest{Content: content})
				_, errStream := upload(ctx, e.bankA.Bank, content, int64(len(content)), 1<<10)
				if errStream == nil || errUnary == nil || status.Code(errStream) != codes.InvalidArgument || errStream.Error() != errUnary.Error() {
					t.Errorf("%s: upload %v, import %v", name, errStream, errUnary)
				}
			}
		})
		t.Run("roles", func(t *testing.T) {
			content := fixture(t, "camt/camt054.v2.xml")
			for _, c := range []struct {
				name string
				c    client
				code codes.Code
			}{{"member", e.alpha, codes.PermissionDenied}, {"operator", e.operator, codes.PermissionDenied}, {"no token", e.anon, codes.Unauthenticated}} {
				_, err := settlement.Upload(ctx, c.c.Bank, "camt054.xml", int64(len(content)), bytes.NewReader(content))
				if codeOf(err) != c.code {
					t.Errorf("%s: %v, want %v", c.name, err, c.code)
				}
			}
		})

		if n, m := settlement.ReconCounts(t, e.svc); n != 0 || m != 0 {
			t.Fatalf("refused uploads stored %d reports, %d matches", n, m)
		}
		// The limit is on the file, not on the stream: a file under it goes through.
		content := fixture(t, "camt/camt054.v2.xml")
		resp := must[*settlementv1.UploadStatementResponse](t)(settlement.Upload(ctx, e.bankA.Bank, "camt054.xml", int64(len(content)), bytes.NewReader(content)))
		if !resp.Imported || resp.Report.Format != "camt.054" {
			t.Fatalf("upload = %v", resp)
		}
	}, small)
}
