package matching

import (
	"context"

	"google.golang.org/grpc"

	"github.com/bcx-exchange/bcx/pkg/auth"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
)

// LocalListing adapts an in-process listing server to the client the
// matching service needs (Config.Listing), acting as principal p (a SERVICE
// or OPERATOR principal): for `bcx dev`, where both services share a
// process. Only the calls the matching service makes are forwarded
// (ListInstruments, GetParticipant); the others are not available.
func LocalListing(srv listingv1.ListingServiceServer, p auth.Principal) listingv1.ListingServiceClient {
	return &localListing{srv: srv, p: p}
}

type localListing struct {
	listingv1.ListingServiceClient // nil: other methods are not forwarded
	srv                            listingv1.ListingServiceServer
	p                              auth.Principal
}

func (l *localListing) ListInstruments(ctx context.Context, in *listingv1.ListInstrumentsRequest, _ ...grpc.CallOption) (*listingv1.ListInstrumentsResponse, error) {
	return l.srv.ListInstruments(auth.WithPrincipal(ctx, l.p), in)
}

func (l *localListing) GetParticipant(ctx context.Context, in *listingv1.GetParticipantRequest, _ ...grpc.CallOption) (*listingv1.GetParticipantResponse, error) {
	return l.srv.GetParticipant(auth.WithPrincipal(ctx, l.p), in)
}
