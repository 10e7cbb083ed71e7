// Package listing is the listing service: the exchange's reference data
// (commodities, warehouses, instruments and their sessions), its participants
// with their credentials and settlement accounts, and the token verifier every
// other service authenticates calls with.
package listing

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/idempotency"
	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/paging"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

var _ listingv1.ListingServiceServer = (*Server)(nil)

// Server implements bcx.listing.v1.ListingService.
type Server struct {
	listingv1.UnimplementedListingServiceServer
	store      *Store
	currencies *money.Registry
	verifier   *Verifier
	now        func() time.Time
	logger     *slog.Logger
}

// NewServer returns the listing service over a store.
func NewServer(store *Store, currencies *money.Registry, verifier *Verifier, logger *slog.Logger) *Server {
	return &Server{store: store, currencies: currencies, verifier: verifier, now: time.Now, logger: logger}
}

var (
	operator = []typev1.Role{typev1.Role_ROLE_OPERATOR}
	self     = auth.Everyone
)

// Policy says who may call each ListingService method.
func Policy() auth.Policy {
	m := func(name string) string { return "/" + listingv1.ListingService_ServiceDesc.ServiceName + "/" + name }
	return auth.Policy{
		m("WhoAmI"):                 self,
		m("CreateCommodity"):        operator,
		m("GetCommodity"):           auth.Everyone,
		m("ListCommodities"):        auth.Everyone,
		m("CreateWarehouse"):        operator,
		m("ListWarehouses"):         auth.Everyone,
		m("CreateInstrument"):       operator,
		m("AmendInstrument"):        operator,
		m("DelistInstrument"):       operator,
		m("GetInstrument"):          auth.Everyone,
		m("ListInstruments"):        auth.Everyone,
		m("GetSessionState"):        auth.Everyone,
		m("CreateParticipant"):      operator,
		m("GetParticipant"):         self, // others' look like missing ones
		m("ListParticipants"):       {typev1.Role_ROLE_OPERATOR, typev1.Role_ROLE_SERVICE},
		m("IssueCredential"):        operator,
		m("RotateCredential"):       self, // own credentials only, unless operator
		m("RevokeCredential"):       self,
		m("ListCredentials"):        self,
		m("AddSettlementAccount"):   operator,
		m("ListSettlementAccounts"): {typev1.Role_ROLE_OPERATOR, typev1.Role_ROLE_MEMBER, typev1.Role_ROLE_CLEARING_BANK, typev1.Role_ROLE_SERVICE},
	}
}

// idempotent runs fn in a transaction guarded by the request's idempotency
// key, scoped to the caller and the method.
func idempotent[T proto.Message](ctx context.Context, s *Server, method, key string, req proto.Message, fn func(q Q) (T, error)) (T, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return idempotency.Do(ctx, s.store.db, "listing."+method+"/"+p.ParticipantID, key, req, fn)
}

func read[T any](ctx context.Context, s *Server, fn func(q Q) (T, error)) (T, error) {
	var out T
	err := s.store.InTx(ctx, func(q Q) error {
		var err error
		out, err = fn(q)
		return err
	})
	return out, err
}

// page decodes paging fields: list calls return up to size items after the
// key in the token.
func page(size int32, token string) (int, string, error) {
	n, err := paging.Size(size)
	if err != nil {
		return 0, "", err
	}
	after, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, "", rpcerr.Invalid("page_token", "malformed page token")
	}
	return n, string(after), nil
}

func nextToken(n, size int, last string) string {
	if n < size {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(last))
}

func notFoundIf(err error, kind, id string) error {
	if errors.Is(err, ErrNotFound) {
		return rpcerr.NotFound(kind, id)
	}
	return err
}

// WhoAmI returns the caller.
func (s *Server) WhoAmI(ctx context.Context, _ *listingv1.WhoAmIRequest) (*listingv1.WhoAmIResponse, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	part, err := read(ctx, s, func(q Q) (*listingv1.Participant, error) { return s.store.GetParticipant(ctx, q, p.ParticipantID) })
	if err != nil {
		return nil, err
	}
	return &listingv1.WhoAmIResponse{Participant: part, CredentialId: p.CredentialID}, nil
}

func (s *Server) CreateCommodity(ctx context.Context, req *listingv1.CreateCommodityRequest) (*listingv1.CreateCommodityResponse, error) {
	if err := validateCommodity(req.Commodity); err != nil {
		return nil, err
	}
	return idempotent(ctx, s, "CreateCommodity", req.IdempotencyKey, req, func(q Q) (*listingv1.CreateCommodityResponse, error) {
		if err := s.store.CreateCommodity(ctx, q, req.Commodity, s.now()); errors.Is(err, ErrExists) {
			return nil, rpcerr.InvalidReason("commodity.code", "ALREADY_EXISTS", "commodity %s already exists", req.Commodity.Code)
		} else if err != nil {
			return nil, err
		}
		return &listingv1.CreateCommodityResponse{Commodity: req.Commodity}, nil
	})
}

func (s *Server) GetCommodity(ctx context.Context, req *listingv1.GetCommodityRequest) (*listingv1.GetCommodityResponse, error) {
	c, err := read(ctx, s, func(q Q) (*listingv1.Commodity, error) { return s.store.GetCommodity(ctx, q, req.Code) })
	if err != nil {
		return nil, notFoundIf(err, "commodity", req.Code)
	}
	return &listingv1.GetCommodityResponse{Commodity: c}, nil
}

func (s *Server) ListCommodities(ctx context.Context, req *listingv1.ListCommoditiesRequest) (*listingv1.ListCommoditiesResponse, error) {
	size, after, err := page(req.PageSize, req.PageToken)
	if err != nil {
		return nil, err
	}
	cs, err := read(ctx, s, func(q Q) ([]*listingv1.Commodity, error) { return s.store.ListCommodities(ctx, q, after, size) })
	if err != nil {
		return nil, err
	}
	resp := &listingv1.ListCommoditiesResponse{Commodities: cs}
	if len(cs) > 0 {
		resp.NextPageToken = nextToken(len(cs), size, cs[len(cs)-1].Code)
	}
	return resp, nil
}

func (s *Server) CreateWarehouse(ctx context.Context, req *listingv1.CreateWarehouseRequest) (*listingv1.CreateWarehouseResponse, error) {
	if err := validateWarehouse(req.Warehouse); err != nil {
		return nil, err
	}
	return idempotent(ctx, s, "CreateWarehouse", req.IdempotencyKey, req, func(q Q) (*listingv1.CreateWarehouseResponse, error) {
		op, err := s.store.GetParticipant(ctx, q, req.Warehouse.OperatorParticipantId)
		if errors.Is(err, ErrNotFound) || (err == nil && op.Role != typev1.Role_ROLE_WAREHOUSE) {
			return nil, rpcerr.Invalid("warehouse.operator_participant_id", "%q is not a warehouse participant", req.Warehouse.OperatorParticipantId)
		} else if err != nil {
			return nil, err
		}
		if err := s.store.CreateWarehouse(ctx, q, req.Warehouse, s.now()); errors.Is(err, ErrExists) {
			return nil, rpcerr.InvalidReason("warehouse.code", "ALREADY_EXISTS", "warehouse %s already exists", req.Warehouse.Code)
		} else if err != nil {
			return nil, err
		}
		return &listingv1.CreateWarehouseResponse{Warehouse: req.Warehouse}, nil
	})
}

func (s *Server) ListWarehouses(ctx context.Context, req *listingv1.ListWarehousesRequest) (*listingv1.ListWarehousesResponse, error) {
	size, after, err := page(req.PageSize, req.PageToken)
	if err != nil {
		return nil, err
	}
	ws, err := read(ctx, s, func(q Q) ([]*listingv1.Warehouse, error) { return s.store.ListWarehouses(ctx, q, after, size) })
	if err != nil {
		return nil, err
	}
	resp := &listingv1.ListWarehousesResponse{Warehouses: ws}
	if len(ws) > 0 {
		resp.NextPageToken = nextToken(len(ws), size, ws[len(ws)-1].Code)
	}
	return resp, nil
}

func (s *Server) CreateInstrument(ctx context.Context, req *listingv1.CreateInstrumentRequest) (*listingv1.CreateInstrumentResponse, error) {
	if err := validCode("symbol", req.Symbol); err != nil {
		return nil, err
	}
	normalizeSpec(req.Spec)
	return idempotent(ctx, s, "CreateInstrument", req.IdempotencyKey, req, func(q Q) (*listingv1.CreateInstrumentResponse, error) {
		if _, err := ValidateSpec(ctx, q, s.store, s.currencies, req.Spec); err != nil {
			return nil, err
		}
		now := s.now()
		if err := s.store.CreateInstrument(ctx, q, req.Symbol, req.Spec, now); errors.Is(err, ErrExists) {
			return nil, rpcerr.InvalidReason("symbol", "ALREADY_EXISTS", "instrument %s already exists", req.Symbol)
		} else if err != nil {
			return nil, err
		}
		inst, err := s.store.GetInstrument(ctx, q, req.Symbol, now)
		if err != nil {
			return nil, err
		}
		return &listingv1.CreateInstrumentResponse{Instrument: inst}, nil
	})
}

// scheduleChange records a new definition of an instrument effective from the
// start of its next session (by the schedule in effect now), replacing any
// change still pending.
func (s *Server) scheduleChange(ctx context.Context, q Q, symbol string, spec *listingv1.InstrumentSpec, status listingv1.InstrumentStatus) (*listingv1.Instrument, error) {
	now := s.now()
	cur, err := s.store.GetInstrument(ctx, q, symbol, now)
	if err != nil {
		return nil, notFoundIf(err, "instrument", symbol)
	}
	if cur.Status == listingv1.InstrumentStatus_INSTRUMENT_STATUS_DELISTED {
		return nil, rpcerr.Precondition("INSTRUMENT_DELISTED", "instrument %s is delisted", symbol)
	}
	if cur.Spec.Commodity != spec.Commodity {
		return nil, rpcerr.Invalid("spec.commodity", "an instrument's commodity cannot change (%s)", cur.Spec.Commodity)
	}
	sched, err := ParseSchedule("spec.schedule", cur.Spec.Schedule)
	if err != nil {
		return nil, err
	}
	if err := s.store.DropPendingVersions(ctx, q, symbol, now); err != nil {
		return nil, err
	}
	if err := s.store.AddInstrumentVersion(ctx, q, symbol, cur.Version+1, spec, status, sched.NextSessionStart(now), now); err != nil {
		return nil, err
	}
	return s.store.GetInstrument(ctx, q, symbol, now)
}

func (s *Server) AmendInstrument(ctx context.Context, req *listingv1.AmendInstrumentRequest) (*listingv1.AmendInstrumentResponse, error) {
	if err := required("symbol", req.Symbol); err != nil {
		return nil, err
	}
	normalizeSpec(req.Spec)
	return idempotent(ctx, s, "AmendInstrument", req.IdempotencyKey, req, func(q Q) (*listingv1.AmendInstrumentResponse, error) {
		if _, err := ValidateSpec(ctx, q, s.store, s.currencies, req.Spec); err != nil {
			return nil, err
		}
		cur, err := s.store.GetInstrument(ctx, q, req.Symbol, s.now())
		if err != nil {
			return nil, notFoundIf(err, "instrument", req.Symbol)
		}
		// An amendment replaces a pending one; it must not quietly undo a
		// pending delisting.
		if cur.Pending != nil && cur.Pending.Status == listingv1.InstrumentStatus_INSTRUMENT_STATUS_DELISTED {
			return nil, rpcerr.Precondition("DELISTING_PENDING", "instrument %s is being delisted from %s", req.Symbol,
				cur.Pending.EffectiveFrom.AsTime().Format(time.RFC3339))
		}
		inst, err := s.scheduleChange(ctx, q, req.Symbol, req.Spec, listingv1.InstrumentStatus_INSTRUMENT_STATUS_ACTIVE)
		if err != nil {
			return nil, err
		}
		return &listingv1.AmendInstrumentResponse{Instrument: inst}, nil
	})
}

func (s *Server) DelistInstrument(ctx context.Context, req *listingv1.DelistInstrumentRequest) (*listingv1.DelistInstrumentResponse, error) {
	if err := required("symbol", req.Symbol); err != nil {
		return nil, err
	}
	return idempotent(ctx, s, "DelistInstrument", req.IdempotencyKey, req, func(q Q) (*listingv1.DelistInstrumentResponse, error) {
		cur, err := s.store.GetInstrument(ctx, q, req.Symbol, s.now())
		if err != nil {
			return nil, notFoundIf(err, "instrument", req.Symbol)
		}
		inst, err := s.scheduleChange(ctx, q, req.Symbol, cur.Spec, listingv1.InstrumentStatus_INSTRUMENT_STATUS_DELISTED)
		if err != nil {
			return nil, err
		}
		return &listingv1.DelistInstrumentResponse{Instrument: inst}, nil
	})
}

func (s *Server) GetInstrument(ctx context.Context, req *listingv1.GetInstrumentRequest) (*listingv1.GetInstrumentResponse, error) {
	inst, err := read(ctx, s, func(q Q) (*listingv1.Instrument, error) { return s.store.GetInstrument(ctx, q, req.Symbol, s.now()) })
	if err != nil {
		return nil, notFoundIf(err, "instrument", req.Symbol)
	}
	return &listingv1.GetInstrumentResponse{Instrument: inst}, nil
}

func (s *Server) ListInstruments(ctx context.Context, req *listingv1.ListInstrumentsRequest) (*listingv1.ListInstrumentsResponse, error) {
	size, after, err := page(req.PageSize, req.PageToken)
	if err != nil {
		return nil, err
	}
	resp := &listingv1.ListInstrumentsResponse{}
	err = s.store.InTx(ctx, func(q Q) error {
		resp.Instruments = nil
		now := s.now()
		symbols, err := s.store.ListInstrumentSymbols(ctx, q, after, req.Commodity, size)
		if err != nil {
			return err
		}
		for _, sym := range symbols {
			inst, err := s.store.GetInstrument(ctx, q, sym, now)
			if err != nil {
				return err
			}
			if inst.Status == listingv1.InstrumentStatus_INSTRUMENT_STATUS_DELISTED && !req.IncludeDelisted {
				continue
			}
			resp.Instruments = append(resp.Instruments, inst)
		}
		if len(symbols) > 0 {
			resp.NextPageToken = nextToken(len(symbols), size, symbols[len(symbols)-1])
		}
		return nil
	})
	return resp, err
}

func (s *Server) GetSessionState(ctx context.Context, req *listingv1.GetSessionStateRequest) (*listingv1.GetSessionStateResponse, error) {
	at := s.now()
	if req.At != nil {
		if err := req.At.CheckValid(); err != nil {
			return nil, rpcerr.Invalid("at", "%v", err)
		}
		at = req.At.AsTime()
	}
	inst, err := read(ctx, s, func(q Q) (*listingv1.Instrument, error) { return s.store.GetInstrument(ctx, q, req.Symbol, at) })
	if err != nil {
		return nil, notFoundIf(err, "instrument", req.Symbol)
	}
	sched, err := ParseSchedule("schedule", inst.Spec.Schedule)
	if err != nil {
		return nil, err
	}
	st := sched.At(at)
	phase := st.Phase
	if inst.Status == listingv1.InstrumentStatus_INSTRUMENT_STATUS_DELISTED {
		phase = listingv1.PhaseKind_PHASE_KIND_UNSPECIFIED
	}
	return &listingv1.GetSessionStateResponse{Phase: phase, TradingDate: st.TradingDate,
		PhaseEndsAt: timestamppb.New(st.PhaseEndsAt), NextSessionStartsAt: timestamppb.New(st.NextSessionStartsAt)}, nil
}

func (s *Server) CreateParticipant(ctx context.Context, req *listingv1.CreateParticipantRequest) (*listingv1.CreateParticipantResponse, error) {
	if err := validCode("id", req.Id); err != nil {
		return nil, err
	}
	if err := required("name", req.Name); err != nil {
		return nil, err
	}
	if req.Role == typev1.Role_ROLE_UNSPECIFIED || typev1.Role_name[int32(req.Role)] == "" {
		return nil, rpcerr.Invalid("role", "must be one of ROLE_MEMBER, ROLE_WAREHOUSE, ROLE_CLEARING_BANK, ROLE_OPERATOR, ROLE_SERVICE")
	}
	return idempotent(ctx, s, "CreateParticipant", req.IdempotencyKey, req, func(q Q) (*listingv1.CreateParticipantResponse, error) {
		p := &listingv1.Participant{Id: req.Id, Name: req.Name, Role: req.Role, Status: listingv1.ParticipantStatus_PARTICIPANT_STATUS_ACTIVE}
		if err := s.store.CreateParticipant(ctx, q, p, s.now()); errors.Is(err, ErrExists) {
			return nil, rpcerr.InvalidReason("id", "ALREADY_EXISTS", "participant %s already exists", req.Id)
		} else if err != nil {
			return nil, err
		}
		return &listingv1.CreateParticipantResponse{Participant: p}, nil
	})
}

// visibleParticipant enforces "another party's object looks like a missing
// one": participants see only themselves; operators and bcx's own services
// (which map participant ids to core numbers) see everyone.
func visibleParticipant(p auth.Principal, id string) error {
	if p.Is(typev1.Role_ROLE_OPERATOR, typev1.Role_ROLE_SERVICE) || p.ParticipantID == id {
		return nil
	}
	return rpcerr.NotFound("participant", id)
}

func (s *Server) GetParticipant(ctx context.Context, req *listingv1.GetParticipantRequest) (*listingv1.GetParticipantResponse, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if err := visibleParticipant(p, req.Id); err != nil {
		return nil, err
	}
	part, err := read(ctx, s, func(q Q) (*listingv1.Participant, error) { return s.store.GetParticipant(ctx, q, req.Id) })
	if err != nil {
		return nil, notFoundIf(err, "participant", req.Id)
	}
	return &listingv1.GetParticipantResponse{Participant: part}, nil
}

func (s *Server) ListParticipants(ctx context.Context, req *listingv1.ListParticipantsRequest) (*listingv1.ListParticipantsResponse, error) {
	size, after, err := page(req.PageSize, req.PageToken)
	if err != nil {
		return nil, err
	}
	ps, err := read(ctx, s, func(q Q) ([]*listingv1.Participant, error) {
		return s.store.ListParticipants(ctx, q, after, req.Role, size)
	})
	if err != nil {
		return nil, err
	}
	resp := &listingv1.ListParticipantsResponse{Participants: ps}
	if len(ps) > 0 {
		resp.NextPageToken = nextToken(len(ps), size, ps[len(ps)-1].Id)
	}
	return resp, nil
}

func newCredentialID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "c" + hex.EncodeToString(b[:])
}

// issue creates a credential for a participant and returns it with its token.
func (s *Server) issue(ctx context.Context, q Q, participantID, label string) (*listingv1.Credential, string, error) {
	part, err := s.store.GetParticipant(ctx, q, participantID)
	if errors.Is(err, ErrNotFound) {
		return nil, "", rpcerr.NotFound("participant", participantID)
	} else if err != nil {
		return nil, "", err
	}
	cred := &listingv1.Credential{Id: newCredentialID(), ParticipantId: part.Id, Label: label}
	token, hash, err := auth.NewToken(cred.Id)
	if err != nil {
		return nil, "", err
	}
	if err := s.store.CreateCredential(ctx, q, cred, hash, s.now()); err != nil {
		return nil, "", err
	}
	return cred, token, nil
}

func (s *Server) IssueCredential(ctx context.Context, req *listingv1.IssueCredentialRequest) (*listingv1.IssueCredentialResponse, error) {
	if err := required("participant_id", req.ParticipantId); err != nil {
		return nil, err
	}
	// Not idempotent by stored response: a stored token would be a second copy
	// of the secret. A retried issue makes a second credential, which the
	// operator can revoke.
	var resp *listingv1.IssueCredentialResponse
	err := s.store.InTx(ctx, func(q Q) error {
		cred, token, err := s.issue(ctx, q, req.ParticipantId, req.Label)
		resp = &listingv1.IssueCredentialResponse{Credential: cred, Token: token}
		return err
	})
	return resp, err
}

// ownCredential loads a credential the caller may manage: its own, or any
// for an operator. Others' credentials are reported missing.
func (s *Server) ownCredential(ctx context.Context, q Q, p auth.Principal, id string) (*listingv1.Credential, error) {
	cred, _, err := s.store.GetCredential(ctx, q, id)
	if errors.Is(err, ErrNotFound) || (err == nil && p.Role != typev1.Role_ROLE_OPERATOR && cred.ParticipantId != p.ParticipantID) {
		return nil, rpcerr.NotFound("credential", id)
	}
	return cred, err
}

// RotationGrace is how long a rotated token stays valid after its rotation.
const RotationGrace = 5 * time.Minute

func (s *Server) RotateCredential(ctx context.Context, req *listingv1.RotateCredentialRequest) (*listingv1.RotateCredentialResponse, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	var resp *listingv1.RotateCredentialResponse
	err = s.store.InTx(ctx, func(q Q) error {
		old, err := s.ownCredential(ctx, q, p, req.CredentialId)
		if err != nil {
			return err
		}
		now := s.now()
		if old.RevokedAt != nil && !old.RevokedAt.AsTime().After(now) {
			return rpcerr.Precondition("CREDENTIAL_REVOKED", "credential %s is revoked", old.Id)
		}
		cred, token, err := s.issue(ctx, q, old.ParticipantId, old.Label)
		if err != nil {
			return err
		}
		// The old token keeps working for RotationGrace, so a caller whose
		// response was lost can rotate again instead of being locked out.
		if err := s.store.RevokeCredential(ctx, q, old.Id, now.Add(RotationGrace)); err != nil {
			return err
		}
		revoked, _, err := s.store.GetCredential(ctx, q, old.Id)
		resp = &listingv1.RotateCredentialResponse{Credential: cred, Token: token, Revoked: revoked}
		return err
	})
	if err == nil {
		s.verifier.Forget(req.CredentialId)
	}
	return resp, err
}

func (s *Server) RevokeCredential(ctx context.Context, req *listingv1.RevokeCredentialRequest) (*listingv1.RevokeCredentialResponse, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	var resp *listingv1.RevokeCredentialResponse
	err = s.store.InTx(ctx, func(q Q) error {
		if _, err := s.ownCredential(ctx, q, p, req.CredentialId); err != nil {
			return err
		}
		if err := s.store.RevokeCredential(ctx, q, req.CredentialId, s.now()); err != nil {
			return err
		}
		cred, _, err := s.store.GetCredential(ctx, q, req.CredentialId)
		resp = &listingv1.RevokeCredentialResponse{Credential: cred}
		return err
	})
	if err == nil {
		s.verifier.Forget(req.CredentialId)
	}
	return resp, err
}

func (s *Server) ListCredentials(ctx context.Context, req *listingv1.ListCredentialsRequest) (*listingv1.ListCredentialsResponse, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	id := req.ParticipantId
	if id == "" {
		id = p.ParticipantID
	}
	if err := visibleParticipant(p, id); err != nil {
		return nil, err
	}
	size, after, err := page(req.PageSize, req.PageToken)
	if err != nil {
		return nil, err
	}
	cs, err := read(ctx, s, func(q Q) ([]*listingv1.Credential, error) { return s.store.ListCredentials(ctx, q, id, after, size) })
	if err != nil {
		return nil, err
	}
	resp := &listingv1.ListCredentialsResponse{Credentials: cs}
	if len(cs) > 0 {
		resp.NextPageToken = nextToken(len(cs), size, cs[len(cs)-1].Id)
	}
	return resp, nil
}

func (s *Server) AddSettlementAccount(ctx context.Context, req *listingv1.AddSettlementAccountRequest) (*listingv1.AddSettlementAccountResponse, error) {
	a := req.Account
	if a == nil {
		return nil, rpcerr.Invalid("account", "is required")
	}
	if _, err := s.currencies.Lookup(a.Currency); err != nil {
		return nil, rpcerr.Invalid("account.currency", "unknown currency %q (known: %v)", a.Currency, s.currencies.Codes())
	}
	if err := required("account.account_number", a.AccountNumber); err != nil {
		return nil, err
	}
	return idempotent(ctx, s, "AddSettlementAccount", req.IdempotencyKey, req, func(q Q) (*listingv1.AddSettlementAccountResponse, error) {
		member, err := s.store.GetParticipant(ctx, q, a.ParticipantId)
		if errors.Is(err, ErrNotFound) || (err == nil && member.Role != typev1.Role_ROLE_MEMBER) {
			return nil, rpcerr.Invalid("account.participant_id", "%q is not a trading member", a.ParticipantId)
		} else if err != nil {
			return nil, err
		}
		bank, err := s.store.GetParticipant(ctx, q, a.BankParticipantId)
		if errors.Is(err, ErrNotFound) || (err == nil && bank.Role != typev1.Role_ROLE_CLEARING_BANK) {
			return nil, rpcerr.Invalid("account.bank_participant_id", "%q is not a clearing bank", a.BankParticipantId)
		} else if err != nil {
			return nil, err
		}
		if err := s.store.AddSettlementAccount(ctx, q, a, s.now()); errors.Is(err, ErrExists) {
			return nil, rpcerr.InvalidReason("account.currency", "ALREADY_EXISTS", "%s already has a %s settlement account", a.ParticipantId, a.Currency)
		} else if err != nil {
			return nil, err
		}
		return &listingv1.AddSettlementAccountResponse{Account: a}, nil
	})
}

func (s *Server) ListSettlementAccounts(ctx context.Context, req *listingv1.ListSettlementAccountsRequest) (*listingv1.ListSettlementAccountsResponse, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	member, bank := req.ParticipantId, ""
	switch p.Role {
	case typev1.Role_ROLE_MEMBER:
		if member != "" && member != p.ParticipantID {
			return nil, rpcerr.NotFound("participant", member)
		}
		member = p.ParticipantID
	case typev1.Role_ROLE_CLEARING_BANK:
		bank = p.ParticipantID // a bank sees only the accounts it holds
	}
	size, after, err := page(req.PageSize, req.PageToken)
	if err != nil {
		return nil, err
	}
	afterMember, afterCurrency, _ := strings.Cut(after, "/")
	as, err := read(ctx, s, func(q Q) ([]*listingv1.SettlementAccount, error) {
		return s.store.ListSettlementAccounts(ctx, q, member, bank, afterMember, afterCurrency, size)
	})
	if err != nil {
		return nil, err
	}
	resp := &listingv1.ListSettlementAccountsResponse{Accounts: as}
	if len(as) > 0 {
		last := as[len(as)-1]
		resp.NextPageToken = nextToken(len(as), size, last.ParticipantId+"/"+last.Currency)
	}
	return resp, nil
}
