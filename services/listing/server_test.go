package listing_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/server"
	"github.com/bcx-exchange/bcx/pkg/sqlstore/sqlstoretest"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/listing"
)

// env is a listing service behind the real interceptors, seeded with the demo
// market, and a client per demo participant.
type env struct {
	store    *listing.Store
	operator listingv1.ListingServiceClient
	memberA  listingv1.ListingServiceClient
	memberB  listingv1.ListingServiceClient
	bank     listingv1.ListingServiceClient
	anon     listingv1.ListingServiceClient
	creds    *listing.DevCredentials
	dial     func(token string) listingv1.ListingServiceClient
}

func newEnv(t *testing.T, b sqlstoretest.Backend) *env {
	t.Helper()
	ctx := context.Background()
	db := b.Open(t)
	store, err := listing.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	verifier := listing.NewVerifier(store, time.Minute)
	svc := listing.NewServer(store, money.NewRegistry(), verifier, logger)
	creds, err := listing.SeedDemo(ctx, svc, true)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(logger, verifier, listing.Policy())
	listingv1.RegisterListingServiceServer(srv.GRPC, svc)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.GRPC.Serve(lis) }()
	t.Cleanup(srv.GRPC.Stop)
	dial := func(token string) listingv1.ListingServiceClient {
		opts := []grpc.DialOption{
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
		}
		if token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(auth.BearerCredentials{Token: token, Insecure: true}))
		}
		conn, err := grpc.NewClient("passthrough:///bufnet", opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return listingv1.NewListingServiceClient(conn)
	}
	return &env{store: store, creds: creds, dial: dial,
		operator: dial(creds.Operator.Token), memberA: dial(creds.Members[0].Token), memberB: dial(creds.Members[1].Token),
		bank: dial(creds.Bank.Token), anon: dial("")}
}

func forEachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range sqlstoretest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, b))
		})
	}
}

func wantCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %v (%v), want %v", st.Code(), err, code)
	}
	return st
}

// wantField checks an InvalidArgument names the field in a BadRequest detail.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	st := wantCode(t, err, codes.InvalidArgument)
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				if v.Field == field {
					return
				}
			}
			t.Fatalf("field violations %v, want field %q (%v)", br.FieldViolations, field, err)
		}
	}
	t.Fatalf("no BadRequest detail in %v, want field %q", err, field)
}

func TestDemoMarket(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		resp, err := e.memberA.ListInstruments(ctx, &listingv1.ListInstrumentsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*listingv1.Instrument{}
		for _, i := range resp.Instruments {
			got[i.Symbol] = i
		}
		for sym, want := range map[string]struct{ currency, lot, tick string }{
			"CF3128B-QD": {"CNY", "5", "5"}, "TSR20-QD-B": {"USD", "10", "1"}, "LCO-QD": {"CNY", "10", "1"},
		} {
			i := got[sym]
			if i == nil {
				t.Fatalf("demo instrument %s missing from %v", sym, resp.Instruments)
			}
			if i.Spec.QuoteCurrency != want.currency || i.Spec.LotSize != want.lot || i.Spec.PriceTick != want.tick || i.Spec.Unit != "t" {
				t.Errorf("%s = %s %s/%s lot %s, want %+v", sym, i.Spec.QuoteCurrency, i.Spec.PriceTick, i.Spec.Unit, i.Spec.LotSize, want)
			}
			if i.Status != listingv1.InstrumentStatus_INSTRUMENT_STATUS_ACTIVE || i.Version != 1 || i.Number == 0 {
				t.Errorf("%s status %v version %d number %d", sym, i.Status, i.Version, i.Number)
			}
		}
		who, err := e.bank.WhoAmI(ctx, &listingv1.WhoAmIRequest{})
		if err != nil || who.Participant.Id != listing.DemoBank || who.Participant.Role != typev1.Role_ROLE_CLEARING_BANK {
			t.Fatalf("WhoAmI(bank) = %v, %v", who, err)
		}
	})
}

func TestAuthentication(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		_, err := e.anon.ListInstruments(ctx, &listingv1.ListInstrumentsRequest{})
		wantCode(t, err, codes.Unauthenticated)
		for _, bad := range []string{"nonsense", "bcx_cdeadbeef_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			e.creds.Members[0].Token[:len(e.creds.Members[0].Token)-1] + "x"} {
			_, err := e.dial(bad).ListInstruments(ctx, &listingv1.ListInstrumentsRequest{})
			wantCode(t, err, codes.Unauthenticated)
		}

		// Rotation: the new token works; the old one keeps working for the
		// grace period (a lost response must not lock the caller out) until
		// it is revoked explicitly.
		who, err := e.memberB.WhoAmI(ctx, &listingv1.WhoAmIRequest{})
		if err != nil {
			t.Fatal(err)
		}
		rot, err := e.memberB.RotateCredential(ctx, &listingv1.RotateCredentialRequest{CredentialId: who.CredentialId})
		if err != nil {
			t.Fatal(err)
		}
		if rot.Revoked.RevokedAt == nil || rot.Credential.Id == who.CredentialId ||
			rot.Revoked.RevokedAt.AsTime().Before(time.Now().Add(listing.RotationGrace-time.Minute)) {
			t.Fatalf("rotate: %v", rot)
		}
		if _, err := e.memberB.WhoAmI(ctx, &listingv1.WhoAmIRequest{}); err != nil {
			t.Fatalf("old token inside the grace period: %v", err)
		}
		if _, err := e.operator.RevokeCredential(ctx, &listingv1.RevokeCredentialRequest{CredentialId: who.CredentialId}); err != nil {
			t.Fatal(err)
		}
		_, err = e.memberB.WhoAmI(ctx, &listingv1.WhoAmIRequest{})
		wantCode(t, err, codes.Unauthenticated)
		fresh := e.dial(rot.Token)
		if who2, err := fresh.WhoAmI(ctx, &listingv1.WhoAmIRequest{}); err != nil || who2.Participant.Id != listing.DemoMemberB {
			t.Fatalf("new token: %v, %v", who2, err)
		}
		// Revocation by the operator.
		if _, err := e.operator.RevokeCredential(ctx, &listingv1.RevokeCredentialRequest{CredentialId: rot.Credential.Id}); err != nil {
			t.Fatal(err)
		}
		_, err = fresh.WhoAmI(ctx, &listingv1.WhoAmIRequest{})
		wantCode(t, err, codes.Unauthenticated)
		// Only the hash is stored.
		_ = e.store.InTx(ctx, func(q listing.Q) error {
			_, hash, err := e.store.GetCredential(ctx, q, rot.Credential.Id)
			if err != nil || len(hash) != 32 || string(hash) == rot.Token {
				t.Fatalf("stored credential hash %x, %v", hash, err)
			}
			return nil
		})
	})
}

func TestAuthorization(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// Calls outside the caller's role.
		_, err := e.memberA.CreateInstrument(ctx, &listingv1.CreateInstrumentRequest{Symbol: "X", Spec: listing.DemoInstruments()["LCO-QD"]})
		wantCode(t, err, codes.PermissionDenied)
		_, err = e.bank.CreateParticipant(ctx, &listingv1.CreateParticipantRequest{Id: "M-EVIL", Name: "x", Role: typev1.Role_ROLE_MEMBER})
		wantCode(t, err, codes.PermissionDenied)
		_, err = e.memberA.ListParticipants(ctx, &listingv1.ListParticipantsRequest{})
		wantCode(t, err, codes.PermissionDenied)

		// Another participant's object answers exactly like a missing one.
		_, errOther := e.memberA.GetParticipant(ctx, &listingv1.GetParticipantRequest{Id: listing.DemoMemberB})
		_, errMissing := e.memberA.GetParticipant(ctx, &listingv1.GetParticipantRequest{Id: "M-NOBODY"})
		stOther, stMissing := wantCode(t, errOther, codes.NotFound), wantCode(t, errMissing, codes.NotFound)
		if len(stOther.Details()) != len(stMissing.Details()) {
			t.Fatalf("other's object and missing object differ: %v vs %v", errOther, errMissing)
		}
		whoB, _ := e.memberB.WhoAmI(ctx, &listingv1.WhoAmIRequest{})
		_, errOther = e.memberA.RevokeCredential(ctx, &listingv1.RevokeCredentialRequest{CredentialId: whoB.CredentialId})
		_, errMissing = e.memberA.RevokeCredential(ctx, &listingv1.RevokeCredentialRequest{CredentialId: "cnothere"})
		wantCode(t, errOther, codes.NotFound)
		wantCode(t, errMissing, codes.NotFound)
		if _, err := e.memberB.WhoAmI(ctx, &listingv1.WhoAmIRequest{}); err != nil {
			t.Fatalf("member B's credential was touched by member A: %v", err)
		}
		_, err = e.memberA.ListCredentials(ctx, &listingv1.ListCredentialsRequest{ParticipantId: listing.DemoMemberB})
		wantCode(t, err, codes.NotFound)

		// Settlement accounts: a member sees its own, a bank those it holds.
		own, err := e.memberA.ListSettlementAccounts(ctx, &listingv1.ListSettlementAccountsRequest{})
		if err != nil || len(own.Accounts) != 2 {
			t.Fatalf("member A accounts = %v, %v", own, err)
		}
		for _, a := range own.Accounts {
			if a.ParticipantId != listing.DemoMemberA {
				t.Fatalf("member A sees %v", a)
			}
		}
		_, err = e.memberA.ListSettlementAccounts(ctx, &listingv1.ListSettlementAccountsRequest{ParticipantId: listing.DemoMemberB})
		wantCode(t, err, codes.NotFound)
		held, err := e.bank.ListSettlementAccounts(ctx, &listingv1.ListSettlementAccountsRequest{})
		if err != nil || len(held.Accounts) != 4 {
			t.Fatalf("bank accounts = %v, %v", held, err)
		}
		// Paged three at a time: the same four, in order.
		var paged []string
		for token := ""; ; {
			r, err := e.bank.ListSettlementAccounts(ctx, &listingv1.ListSettlementAccountsRequest{PageSize: 3, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range r.Accounts {
				paged = append(paged, a.ParticipantId+"/"+a.Currency)
			}
			if token = r.NextPageToken; token == "" {
				break
			}
		}
		if want := "M-ALPHA/CNY M-ALPHA/USD M-BETA/CNY M-BETA/USD"; strings.Join(paged, " ") != want {
			t.Fatalf("paged accounts %v, want %s", paged, want)
		}
	})
}

func spec(mut func(s *listingv1.InstrumentSpec)) *listingv1.InstrumentSpec {
	s := proto.Clone(listing.DemoInstruments()["CF3128B-QD"]).(*listingv1.InstrumentSpec)
	mut(s)
	return s
}

func TestCreateInstrumentValidation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		phases := func(p ...[3]string) func(s *listingv1.InstrumentSpec) {
			return func(s *listingv1.InstrumentSpec) {
				s.Schedule.Phases = nil
				for _, x := range p {
					k := listingv1.PhaseKind_PHASE_KIND_CONTINUOUS
					if x[0] == "call" {
						k = listingv1.PhaseKind_PHASE_KIND_CALL_AUCTION
					}
					s.Schedule.Phases = append(s.Schedule.Phases, &listingv1.SessionPhase{Kind: k, Start: x[1], End: x[2]})
				}
			}
		}
		for _, tc := range []struct {
			name   string
			symbol string
			spec   *listingv1.InstrumentSpec
			field  string
		}{
			{"malformed tick", "CF-T1", spec(func(s *listingv1.InstrumentSpec) { s.PriceTick = "5,0" }), "spec.price_tick"},
			{"exponent tick", "CF-T2", spec(func(s *listingv1.InstrumentSpec) { s.PriceTick = "5e0" }), "spec.price_tick"},
			{"tick below a fen", "CF-T3", spec(func(s *listingv1.InstrumentSpec) { s.PriceTick = "0.005" }), "spec.price_tick"},
			{"negative tick", "CF-T4", spec(func(s *listingv1.InstrumentSpec) { s.PriceTick = "-5" }), "spec.price_tick"},
			{"reference off tick", "CF-T5", spec(func(s *listingv1.InstrumentSpec) { s.ReferencePrice = "15002" }), "spec.reference_price"},
			{"lot finer than the commodity weighs", "CF-T6", spec(func(s *listingv1.InstrumentSpec) { s.LotSize = "5.0001" }), "spec.lot_size"},
			{"tick x lot not whole fen", "CF-T7", spec(func(s *listingv1.InstrumentSpec) { s.PriceTick = "0.01"; s.LotSize = "0.5"; s.ReferencePrice = "15000" }), "spec.lot_size"},
			{"zero lot", "CF-T8", spec(func(s *listingv1.InstrumentSpec) { s.LotSize = "0" }), "spec.lot_size"},
			{"unknown currency", "CF-T9", spec(func(s *listingv1.InstrumentSpec) { s.QuoteCurrency = "XYZ" }), "spec.quote_currency"},
			{"lower-case currency", "CF-T10", spec(func(s *listingv1.InstrumentSpec) { s.QuoteCurrency = "cny" }), "spec.quote_currency"},
			{"duty-paid in USD", "CF-T11", spec(func(s *listingv1.InstrumentSpec) { s.QuoteCurrency = "USD" }), "spec.quote_currency"},
			{"band of 100%", "CF-T12", spec(func(s *listingv1.InstrumentSpec) { s.PriceBand = "1" }), "spec.price_band"},
			{"band under one tick", "CF-T26", spec(func(s *listingv1.InstrumentSpec) { s.PriceBand = "0.0001" }), "spec.price_band"},
			{"reference too large for int64", "CF-T27", spec(func(s *listingv1.InstrumentSpec) { s.ReferencePrice = "99999999999999999999999999999995" }), "spec.reference_price"},
			{"unknown commodity", "CF-T13", spec(func(s *listingv1.InstrumentSpec) { s.Commodity = "ZZ" }), "spec.commodity"},
			{"grade of another commodity", "CF-T14", spec(func(s *listingv1.InstrumentSpec) { s.Grades = []string{"TSR20"} }), "spec.grades[0]"},
			{"bonded warehouse for duty-paid", "CF-T15", spec(func(s *listingv1.InstrumentSpec) { s.Warehouses = []string{"QD-FTZ-NR01"} }), "spec.warehouses[0]"},
			{"unknown warehouse", "CF-T16", spec(func(s *listingv1.InstrumentSpec) { s.Warehouses = []string{"QD-CF01", "NOPE"} }), "spec.warehouses[1]"},
			{"overlapping phases", "CF-T17", spec(phases([3]string{"", "09:00", "11:30"}, [3]string{"", "11:00", "15:00"})), "spec.schedule.phases[1].start"},
			{"phase ends before it starts", "CF-T18", spec(phases([3]string{"", "15:00", "09:00"})), "spec.schedule.phases[0].end"},
			{"bad clock", "CF-T19", spec(phases([3]string{"", "9:00", "11:30"})), "spec.schedule.phases[0].start"},
			{"24:00", "CF-T20", spec(phases([3]string{"", "09:00", "24:00"})), "spec.schedule.phases[0].end"},
			{"no phases", "CF-T21", spec(phases()), "spec.schedule.phases"},
			{"unknown zone", "CF-T22", spec(func(s *listingv1.InstrumentSpec) { s.Schedule.TimeZone = "Mars/Olympus" }), "spec.schedule.time_zone"},
			{"call phase without call mode", "CF-T23", spec(func(s *listingv1.InstrumentSpec) {
				s.Modes = []typev1.TradingMode{typev1.TradingMode_TRADING_MODE_CONTINUOUS}
			}), "spec.schedule.phases[0].kind"},
			{"weekday 8", "CF-T24", spec(func(s *listingv1.InstrumentSpec) { s.Schedule.TradingWeekdays = []int32{1, 8} }), "spec.schedule.trading_weekdays[1]"},
			{"no modes", "CF-T25", spec(func(s *listingv1.InstrumentSpec) { s.Modes = nil }), "spec.modes"},
			{"lower-case symbol", "cf lower", spec(func(*listingv1.InstrumentSpec) {}), "symbol"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.operator.CreateInstrument(ctx, &listingv1.CreateInstrumentRequest{Symbol: tc.symbol, Spec: tc.spec})
				wantField(t, err, tc.field)
				// Nothing stored.
				_, err = e.operator.GetInstrument(ctx, &listingv1.GetInstrumentRequest{Symbol: tc.symbol})
				wantCode(t, err, codes.NotFound)
			})
		}
		// A duplicate symbol is InvalidArgument on the field and leaves the original alone.
		_, err := e.operator.CreateInstrument(ctx, &listingv1.CreateInstrumentRequest{Symbol: "LCO-QD", Spec: spec(func(*listingv1.InstrumentSpec) {})})
		wantField(t, err, "symbol")
		lco, err := e.operator.GetInstrument(ctx, &listingv1.GetInstrumentRequest{Symbol: "LCO-QD"})
		if err != nil || lco.Instrument.Spec.Commodity != "LCO" || lco.Instrument.Version != 1 {
			t.Fatalf("LCO-QD after duplicate create: %v, %v", lco, err)
		}
	})
}

func TestIdempotencyKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		req := &listingv1.CreateParticipantRequest{IdempotencyKey: "k-1", Id: "M-GAMMA", Name: "Gamma", Role: typev1.Role_ROLE_MEMBER}
		first, err := e.operator.CreateParticipant(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.operator.CreateParticipant(ctx, req)
		if err != nil || !proto.Equal(first, again) {
			t.Fatalf("repeat = %v, %v; want %v", again, err, first)
		}
		req2 := proto.Clone(req).(*listingv1.CreateParticipantRequest)
		req2.Name = "Gamma Two"
		_, err = e.operator.CreateParticipant(ctx, req2)
		wantField(t, err, "idempotency_key")
		// Without a key, the natural key still refuses a second create.
		req.IdempotencyKey = ""
		_, err = e.operator.CreateParticipant(ctx, req)
		wantField(t, err, "id")
	})
}

func TestAmendTakesEffectNextSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		amended := spec(func(s *listingv1.InstrumentSpec) { s.ReferencePrice = "15500"; s.PriceBand = "0.05" })
		resp, err := e.operator.AmendInstrument(ctx, &listingv1.AmendInstrumentRequest{Symbol: "CF3128B-QD", Spec: amended})
		if err != nil {
			t.Fatal(err)
		}
		inst := resp.Instrument
		if inst.Spec.ReferencePrice != "15000" || inst.Version != 1 {
			t.Fatalf("amendment in effect immediately: %v", inst.Spec)
		}
		if inst.Pending == nil || inst.Pending.Spec.ReferencePrice != "15500" || inst.Pending.Version != 2 {
			t.Fatalf("pending = %v", inst.Pending)
		}
		eff := inst.Pending.EffectiveFrom.AsTime()
		st, err := e.memberA.GetSessionState(ctx, &listingv1.GetSessionStateRequest{Symbol: "CF3128B-QD"})
		if err != nil {
			t.Fatal(err)
		}
		if !eff.Equal(st.NextSessionStartsAt.AsTime()) || !eff.After(time.Now()) {
			t.Fatalf("effective %v, next session %v", eff, st.NextSessionStartsAt.AsTime())
		}
		// A second amendment replaces the pending one rather than queueing.
		amended.ReferencePrice = "15600"
		resp, err = e.operator.AmendInstrument(ctx, &listingv1.AmendInstrumentRequest{Symbol: "CF3128B-QD", Spec: amended})
		if err != nil || resp.Instrument.Pending.Spec.ReferencePrice != "15600" || resp.Instrument.Pending.Version != 2 {
			t.Fatalf("second amendment: %v, %v", resp, err)
		}
		// Seen from after the effective time, the amendment is in effect.
		_ = e.store.InTx(ctx, func(q listing.Q) error {
			later, err := e.store.GetInstrument(ctx, q, "CF3128B-QD", eff)
			if err != nil || later.Spec.ReferencePrice != "15600" || later.Version != 2 || later.Pending != nil {
				t.Fatalf("at effective time: %v, %v", later, err)
			}
			return nil
		})
		// An invalid amendment changes nothing.
		_, err = e.operator.AmendInstrument(ctx, &listingv1.AmendInstrumentRequest{Symbol: "CF3128B-QD",
			Spec: spec(func(s *listingv1.InstrumentSpec) { s.PriceTick = "7" })})
		wantField(t, err, "spec.reference_price")
		got, _ := e.operator.GetInstrument(ctx, &listingv1.GetInstrumentRequest{Symbol: "CF3128B-QD"})
		if got.Instrument.Pending.Spec.ReferencePrice != "15600" {
			t.Fatalf("invalid amendment changed the pending one: %v", got.Instrument.Pending)
		}
		// Delisting also waits for the next session.
		d, err := e.operator.DelistInstrument(ctx, &listingv1.DelistInstrumentRequest{Symbol: "LCO-QD"})
		if err != nil || d.Instrument.Status != listingv1.InstrumentStatus_INSTRUMENT_STATUS_ACTIVE ||
			d.Instrument.Pending.Status != listingv1.InstrumentStatus_INSTRUMENT_STATUS_DELISTED {
			t.Fatalf("delist: %v, %v", d, err)
		}
		// An amendment must not undo the pending delisting.
		_, err = e.operator.AmendInstrument(ctx, &listingv1.AmendInstrumentRequest{Symbol: "LCO-QD", Spec: listing.DemoInstruments()["LCO-QD"]})
		wantCode(t, err, codes.FailedPrecondition)
	})
}

func TestPaging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var got []string
		token := ""
		for i := 0; i < 10; i++ {
			resp, err := e.operator.ListParticipants(ctx, &listingv1.ListParticipantsRequest{PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range resp.Participants {
				got = append(got, p.Id)
			}
			if token = resp.NextPageToken; token == "" {
				break
			}
		}
		want := []string{"BANK-QDCB", "M-ALPHA", "M-BETA", "OPS", "SVC-BCX", "WH-QDPORT"}
		if len(got) != len(want) {
			t.Fatalf("paged = %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("paged = %v, want %v", got, want)
			}
		}
		_, err := e.operator.ListParticipants(ctx, &listingv1.ListParticipantsRequest{PageToken: "!!"})
		wantField(t, err, "page_token")
	})
}

func TestInternalTokenLivesOneProcess(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		svc := listing.NewServer(e.store, money.NewRegistry(), listing.NewVerifier(e.store, time.Minute), slog.New(slog.NewTextHandler(io.Discard, nil)))
		first, err := listing.IssueInternalToken(ctx, svc)
		if err != nil {
			t.Fatal(err)
		}
		who, err := e.dial(first).WhoAmI(ctx, &listingv1.WhoAmIRequest{})
		if err != nil || who.Participant.Role != typev1.Role_ROLE_SERVICE {
			t.Fatalf("internal token: %v, %v", who, err)
		}
		// The service role reads any participant (to map ids to core numbers).
		if _, err := e.dial(first).GetParticipant(ctx, &listingv1.GetParticipantRequest{Id: listing.DemoMemberA}); err != nil {
			t.Fatalf("service reading a member: %v", err)
		}
		second, err := listing.IssueInternalToken(ctx, svc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.dial(second).WhoAmI(ctx, &listingv1.WhoAmIRequest{}); err != nil {
			t.Fatal(err)
		}
		// The first process's token is revoked (the env's verifier caches for a
		// minute, so check the store).
		_ = e.store.InTx(ctx, func(q listing.Q) error {
			c, _, err := e.store.GetCredential(ctx, q, who.CredentialId)
			if err != nil || c.RevokedAt == nil {
				t.Fatalf("first internal credential not revoked: %v, %v", c, err)
			}
			return nil
		})
	})
}

func TestRemoteVerifier(t *testing.T) {
	b := sqlstoretest.Backends()[0]
	e := newEnv(t, b)
	ctx := context.Background()
	v := listing.NewRemoteVerifier(e.anon, time.Minute)
	p, err := v.Verify(ctx, e.creds.Members[0].Token)
	if err != nil || p.ParticipantID != listing.DemoMemberA || p.Role != typev1.Role_ROLE_MEMBER || p.Number == 0 {
		t.Fatalf("Verify(member) = %+v, %v", p, err)
	}
	tok := e.creds.Members[0].Token
	last := "A"
	if tok[len(tok)-1] == 'A' {
		last = "B"
	}
	bad := tok[:len(tok)-1] + last
	if _, err := v.Verify(ctx, bad); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Verify(altered) = %v, want ErrInvalidToken", err)
	}
	if _, err := v.Verify(ctx, "garbage"); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Verify(garbage) = %v", err)
	}
}

// TestConcurrentCreates races creates: the same request under one key gives
// every caller the same answer, and distinct participants created at once
// all succeed with distinct core numbers (no false "already exists" when two
// pick the same next number).
func TestConcurrentCreates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		const n = 8
		type result struct {
			resp *listingv1.CreateParticipantResponse
			err  error
		}
		same := make(chan result, n)
		distinct := make(chan result, n)
		for i := 0; i < n; i++ {
			go func() {
				r, err := e.operator.CreateParticipant(ctx, &listingv1.CreateParticipantRequest{IdempotencyKey: "race-1",
					Id: "M-RACE", Name: "Race", Role: typev1.Role_ROLE_MEMBER})
				same <- result{r, err}
			}()
			go func() {
				r, err := e.operator.CreateParticipant(ctx, &listingv1.CreateParticipantRequest{
					Id: fmt.Sprintf("M-D%d", i), Name: "Distinct", Role: typev1.Role_ROLE_MEMBER})
				distinct <- result{r, err}
			}()
		}
		var first *listingv1.CreateParticipantResponse
		numbers := map[int64]bool{}
		for i := 0; i < n; i++ {
			r := <-same
			if r.err != nil {
				t.Fatalf("same key, call %d: %v", i, r.err)
			}
			if first == nil {
				first = r.resp
			} else if !proto.Equal(first, r.resp) {
				t.Fatalf("same key, different answers: %v vs %v", first, r.resp)
			}
			d := <-distinct
			if d.err != nil {
				t.Fatalf("distinct create: %v", d.err)
			}
			if numbers[d.resp.Participant.Number] {
				t.Fatalf("number %d given twice", d.resp.Participant.Number)
			}
			numbers[d.resp.Participant.Number] = true
		}
	})
}
