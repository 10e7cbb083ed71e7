package settlement

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
)

var _ settlementv1.SettlementInternalServiceServer = (*internalServer)(nil)

// internalServer implements bcx.settlement.v1.SettlementInternalService:
// calls from the exchange's other services. Policy admits ROLE_SERVICE only.
type internalServer struct {
	settlementv1.UnimplementedSettlementInternalServiceServer
	s *Service
}

// RecordReceiptsLeg records a trade's goods leg, as reported by the receipts
// service (see Service.RecordReceiptsLeg): idempotent, accepted before the
// trade is booked (the answer then carries no settlement), a different leg
// for the same trade refused with FailedPrecondition.
func (in *internalServer) RecordReceiptsLeg(ctx context.Context, req *settlementv1.RecordReceiptsLegRequest) (*settlementv1.RecordReceiptsLegResponse, error) {
	ts, err := in.s.RecordReceiptsLeg(ctx, ReceiptsLeg{TradeID: req.TradeId, DeliveredWeight: req.DeliveredWeight, Reference: req.Reference})
	if err != nil {
		return nil, internalErr(err)
	}
	return &settlementv1.RecordReceiptsLegResponse{Settlement: ts}, nil
}

// internalErr maps what the domain code leaves untyped. Reference data that
// listing no longer has (the trade's instrument, commodity or a member) is
// Unavailable: the caller retries, and the leg goes through once an operator
// has restored it. Everything else is already an rpcerr error or a status
// (listing's own, e.g. Unavailable), or unexpected (Internal, logged by the
// interceptor).
func internalErr(err error) error {
	switch {
	case errors.Is(err, errUnknown):
		return &rpcerr.Error{Code: codes.Unavailable, Reason: "REFERENCE_DATA_MISSING",
			Msg: "reference data for the trade is missing from listing: " + err.Error()}
	case errors.Is(err, errNotPrefetched):
		return &rpcerr.Error{Code: codes.Unavailable, Reason: "REFERENCE_DATA_UNAVAILABLE",
			Msg: "reference data for the trade could not be loaded; retry"}
	}
	return err
}
