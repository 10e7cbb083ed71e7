package receipts

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
)

// Listing is the part of the listing service the registry reads;
// listingv1.ListingServiceClient satisfies it. Its credential must be able to
// read any participant (ROLE_SERVICE or ROLE_OPERATOR): the registry checks
// that a holder is a trading member and a pledgee a clearing bank.
type Listing interface {
	GetCommodity(ctx context.Context, in *listingv1.GetCommodityRequest, opts ...grpc.CallOption) (*listingv1.GetCommodityResponse, error)
	ListWarehouses(ctx context.Context, in *listingv1.ListWarehousesRequest, opts ...grpc.CallOption) (*listingv1.ListWarehousesResponse, error)
	ListInstruments(ctx context.Context, in *listingv1.ListInstrumentsRequest, opts ...grpc.CallOption) (*listingv1.ListInstrumentsResponse, error)
	GetParticipant(ctx context.Context, in *listingv1.GetParticipantRequest, opts ...grpc.CallOption) (*listingv1.GetParticipantResponse, error)
}

const instrumentsTTL = 2 * time.Second

var errUnknownRef = errors.New("not in the reference data")

// refData caches what rarely changes: commodities, warehouses and
// participants (the listing service has no API that changes a commodity's
// scale, a warehouse's operator or a participant's role). Instruments are kept
// for two seconds only: an operator can amend or delist them (effective at a
// session start), and a deposit must see that.
type refData struct {
	listing Listing
	ttl     time.Duration
	now     func() time.Time

	mu           sync.Mutex
	commodities  map[string]cached[*listingv1.Commodity]
	participants map[string]cached[*listingv1.Participant]
	instrs       map[string]cached[[]*listingv1.Instrument]
	warehouses   map[string]*listingv1.Warehouse
	warehousesAt time.Time
}

type cached[T any] struct {
	v  T
	at time.Time
}

func newRefData(l Listing, now func() time.Time) *refData {
	return &refData{listing: l, ttl: time.Minute, now: now,
		commodities: map[string]cached[*listingv1.Commodity]{}, participants: map[string]cached[*listingv1.Participant]{},
		instrs: map[string]cached[[]*listingv1.Instrument]{}}
}

// listingErr maps a listing failure: a missing object is errUnknownRef, the
// rest is Unavailable (the caller may retry; nothing was changed).
func listingErr(err error) error {
	switch status.Code(err) {
	case codes.NotFound:
		return errUnknownRef
	case codes.Canceled, codes.DeadlineExceeded:
		return err
	}
	return status.Errorf(codes.Unavailable, "listing service: %s", status.Convert(err).Message())
}

func (d *refData) commodity(ctx context.Context, code string) (*listingv1.Commodity, error) {
	now := d.now()
	d.mu.Lock()
	c, ok := d.commodities[code]
	d.mu.Unlock()
	if ok && now.Sub(c.at) < d.ttl {
		return c.v, nil
	}
	resp, err := d.listing.GetCommodity(ctx, &listingv1.GetCommodityRequest{Code: code})
	if err != nil {
		return nil, listingErr(err)
	}
	d.mu.Lock()
	d.commodities[code] = cached[*listingv1.Commodity]{resp.Commodity, now}
	d.mu.Unlock()
	return resp.Commodity, nil
}

func (d *refData) participant(ctx context.Context, id string) (*listingv1.Participant, error) {
	now := d.now()
	d.mu.Lock()
	c, ok := d.participants[id]
	d.mu.Unlock()
	if ok && now.Sub(c.at) < d.ttl {
		return c.v, nil
	}
	resp, err := d.listing.GetParticipant(ctx, &listingv1.GetParticipantRequest{Id: id})
	if err != nil {
		return nil, listingErr(err)
	}
	d.mu.Lock()
	d.participants[id] = cached[*listingv1.Participant]{resp.Participant, now}
	d.mu.Unlock()
	return resp.Participant, nil
}

// warehouse returns a warehouse by code. The table is reloaded when stale, or
// when a code is missing (a warehouse created since), at most once a second.
func (d *refData) warehouse(ctx context.Context, code string) (*listingv1.Warehouse, error) {
	all, err := d.allWarehouses(ctx, code)
	if err != nil {
		return nil, err
	}
	w, ok := all[code]
	if !ok {
		return nil, errUnknownRef
	}
	return w, nil
}

// operatedBy lists the codes of the warehouses a participant operates.
func (d *refData) operatedBy(ctx context.Context, participant string) ([]string, error) {
	all, err := d.allWarehouses(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []string
	for code, w := range all {
		if w.OperatorParticipantId == participant {
			out = append(out, code)
		}
	}
	return out, nil
}

func (d *refData) allWarehouses(ctx context.Context, want string) (map[string]*listingv1.Warehouse, error) {
	now := d.now()
	d.mu.Lock()
	all, at := d.warehouses, d.warehousesAt
	d.mu.Unlock()
	_, have := all[want]
	fresh := all != nil && now.Sub(at) < d.ttl
	if fresh && (want == "" || have || now.Sub(at) < time.Second) {
		return all, nil
	}
	loaded := map[string]*listingv1.Warehouse{}
	token := ""
	for {
		resp, err := d.listing.ListWarehouses(ctx, &listingv1.ListWarehousesRequest{PageSize: 500, PageToken: token})
		if err != nil {
			return nil, listingErr(err)
		}
		for _, w := range resp.Warehouses {
			loaded[w.Code] = w
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	d.mu.Lock()
	d.warehouses, d.warehousesAt = loaded, now
	d.mu.Unlock()
	return loaded, nil
}

// instruments lists a commodity's instruments as in effect now.
func (d *refData) instruments(ctx context.Context, commodity string) ([]*listingv1.Instrument, error) {
	now := d.now()
	d.mu.Lock()
	c, ok := d.instrs[commodity]
	d.mu.Unlock()
	if ok && now.Sub(c.at) < instrumentsTTL {
		return c.v, nil
	}
	var out []*listingv1.Instrument
	token := ""
	for {
		resp, err := d.listing.ListInstruments(ctx, &listingv1.ListInstrumentsRequest{PageSize: 500, PageToken: token, Commodity: commodity})
		if err != nil {
			return nil, listingErr(err)
		}
		out = append(out, resp.Instruments...)
		if token = resp.NextPageToken; token == "" {
			d.mu.Lock()
			d.instrs[commodity] = cached[[]*listingv1.Instrument]{out, now}
			d.mu.Unlock()
			return out, nil
		}
	}
}
