package listing

import (
	"context"
	"fmt"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/paging"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

// The demo market of `bcx dev` (DESIGN.md appendix): real exchanges' lot sizes,
// ticks and bands, fictional firms.
const (
	DemoOperator  = "OPS"
	DemoWarehouse = "WH-QDPORT"
	DemoBank      = "BANK-QDCB"
	DemoMemberA   = "M-ALPHA"
	DemoMemberB   = "M-BETA"
	// InternalService is the participant bcx's own services act as when they
	// call each other (settlement crediting the core, receipts depositing lots).
	InternalService = "SVC-BCX"
)

// DevCredential is one token written to dev-credentials.json.
type DevCredential struct {
	ParticipantID string `json:"participant_id"`
	Role          string `json:"role"`
	Token         string `json:"token"`
}

// DevCredentials are the tokens a newcomer needs, one per demo participant.
type DevCredentials struct {
	Listen    string          `json:"listen"`
	Operator  DevCredential   `json:"operator"`
	Members   []DevCredential `json:"members"`
	Warehouse DevCredential   `json:"warehouse"`
	Bank      DevCredential   `json:"bank"`
}

func continuousDay(withCall bool) *listingv1.SessionSchedule {
	s := &listingv1.SessionSchedule{TimeZone: ExchangeTimeZone, TradingWeekdays: []int32{1, 2, 3, 4, 5}}
	if withCall {
		s.Phases = append(s.Phases, &listingv1.SessionPhase{Kind: listingv1.PhaseKind_PHASE_KIND_CALL_AUCTION, Start: "08:55", End: "09:00"})
	}
	for _, p := range [][2]string{{"09:00", "10:15"}, {"10:30", "11:30"}, {"13:30", "15:00"}} {
		s.Phases = append(s.Phases, &listingv1.SessionPhase{Kind: listingv1.PhaseKind_PHASE_KIND_CONTINUOUS, Start: p[0], End: p[1]})
	}
	return s
}

// DemoInstruments are the demo market's instruments.
func DemoInstruments() map[string]*listingv1.InstrumentSpec {
	all := []typev1.TradingMode{typev1.TradingMode_TRADING_MODE_LISTING, typev1.TradingMode_TRADING_MODE_ONE_SIDED_AUCTION,
		typev1.TradingMode_TRADING_MODE_CALL_AUCTION, typev1.TradingMode_TRADING_MODE_CONTINUOUS}
	return map[string]*listingv1.InstrumentSpec{
		"CF3128B-QD": {Commodity: "CF", Grades: []string{"3128B"}, Warehouses: []string{"QD-CF01"}, QuoteCurrency: "CNY",
			LotSize: "5", Unit: "t", PriceTick: "5", ReferencePrice: "15000", PriceBand: "0.04",
			CustomsStatus: typev1.CustomsStatus_CUSTOMS_STATUS_DUTY_PAID, Modes: all, Schedule: continuousDay(true),
			SettlementCycle: listingv1.SettlementCycle_SETTLEMENT_CYCLE_T0_GROSS,
			Description:     "Cotton 3128B (GB 1103.1), Qingdao warehouses, CNY per tonne, 5 t lots"},
		"TSR20-QD-B": {Commodity: "NR", Grades: []string{"TSR20"}, Warehouses: []string{"QD-FTZ-NR01"}, QuoteCurrency: "USD",
			LotSize: "10", Unit: "t", PriceTick: "1", ReferencePrice: "1750", PriceBand: "0.05",
			CustomsStatus: typev1.CustomsStatus_CUSTOMS_STATUS_BONDED,
			Modes: []typev1.TradingMode{typev1.TradingMode_TRADING_MODE_LISTING, typev1.TradingMode_TRADING_MODE_CALL_AUCTION,
				typev1.TradingMode_TRADING_MODE_CONTINUOUS},
			Schedule: continuousDay(true), SettlementCycle: listingv1.SettlementCycle_SETTLEMENT_CYCLE_T0_GROSS,
			Description: "Natural rubber TSR20, Qingdao bonded warehouses, USD per tonne, 10 t lots"},
		"LCO-QD": {Commodity: "LCO", Grades: []string{"S1200"}, Warehouses: []string{"QD-TANK01"}, QuoteCurrency: "CNY",
			LotSize: "10", Unit: "t", PriceTick: "1", ReferencePrice: "5600", PriceBand: "0.05",
			CustomsStatus: typev1.CustomsStatus_CUSTOMS_STATUS_DUTY_PAID,
			Modes:         []typev1.TradingMode{typev1.TradingMode_TRADING_MODE_LISTING, typev1.TradingMode_TRADING_MODE_CONTINUOUS},
			Schedule:      continuousDay(false), SettlementCycle: listingv1.SettlementCycle_SETTLEMENT_CYCLE_T0_GROSS,
			Description: "Light cycle oil, sulfur <= 1,200 ppm, Qingdao tank farms, CNY per tonne, 10 t lots"},
	}
}

// SeedDemo loads the demo market through the service's own validation. Every
// step carries an idempotency key, so a seed interrupted half-way completes on
// the next start. It issues tokens only when issueTokens is set (the first
// start: tokens are shown once and kept in dev-credentials.json).
func SeedDemo(ctx context.Context, s *Server, issueTokens bool) (*DevCredentials, error) {
	ctx = auth.WithPrincipal(ctx, auth.Principal{ParticipantID: DemoOperator, Role: typev1.Role_ROLE_OPERATOR})
	key := func(parts ...string) string { return fmt.Sprint("demo/", parts) }
	for _, p := range []struct {
		id, name string
		role     typev1.Role
	}{
		{DemoOperator, "Exchange Operations", typev1.Role_ROLE_OPERATOR},
		{DemoWarehouse, "Qingdao Port Logistics (demo warehouse)", typev1.Role_ROLE_WAREHOUSE},
		{DemoBank, "Qingdao Demo Clearing Bank", typev1.Role_ROLE_CLEARING_BANK},
		{DemoMemberA, "Alpha Commodities Trading Co. (demo member)", typev1.Role_ROLE_MEMBER},
		{DemoMemberB, "Beta Materials Ltd. (demo member)", typev1.Role_ROLE_MEMBER},
		{InternalService, "bcx services", typev1.Role_ROLE_SERVICE},
	} {
		if _, err := s.CreateParticipant(ctx, &listingv1.CreateParticipantRequest{IdempotencyKey: key("participant", p.id),
			Id: p.id, Name: p.name, Role: p.role}); err != nil {
			return nil, fmt.Errorf("seed participant %s: %w", p.id, err)
		}
	}
	for _, c := range []*listingv1.Commodity{
		{Code: "CF", Name: "Cotton", Unit: "t", WeightScale: 3, Grades: []string{"3128B", "2129B", "4128B"}, DeliveryTolerance: "0.02"},
		{Code: "NR", Name: "Natural rubber", Unit: "t", WeightScale: 3, Grades: []string{"TSR20", "RSS3"}, DeliveryTolerance: "0.01"},
		{Code: "LCO", Name: "Light cycle oil", Unit: "t", WeightScale: 3, Grades: []string{"S1200"}, DeliveryTolerance: "0.01"},
	} {
		if _, err := s.CreateCommodity(ctx, &listingv1.CreateCommodityRequest{IdempotencyKey: key("commodity", c.Code), Commodity: c}); err != nil {
			return nil, fmt.Errorf("seed commodity %s: %w", c.Code, err)
		}
	}
	for _, w := range []*listingv1.Warehouse{
		{Code: "QD-CF01", Name: "Qingdao Cotton Warehouse No. 1", City: "Qingdao", OperatorParticipantId: DemoWarehouse},
		{Code: "QD-FTZ-NR01", Name: "Qingdao FTZ Rubber Bonded Warehouse", City: "Qingdao", OperatorParticipantId: DemoWarehouse, Bonded: true},
		{Code: "QD-TANK01", Name: "Qingdao Huangdao Tank Farm", City: "Qingdao", OperatorParticipantId: DemoWarehouse},
	} {
		if _, err := s.CreateWarehouse(ctx, &listingv1.CreateWarehouseRequest{IdempotencyKey: key("warehouse", w.Code), Warehouse: w}); err != nil {
			return nil, fmt.Errorf("seed warehouse %s: %w", w.Code, err)
		}
	}
	specs := DemoInstruments()
	for _, sym := range []string{"CF3128B-QD", "LCO-QD", "TSR20-QD-B"} {
		if _, err := s.CreateInstrument(ctx, &listingv1.CreateInstrumentRequest{IdempotencyKey: key("instrument", sym),
			Symbol: sym, Spec: specs[sym]}); err != nil {
			return nil, fmt.Errorf("seed instrument %s: %w", sym, err)
		}
	}
	for i, m := range []string{DemoMemberA, DemoMemberB} {
		for _, cur := range []string{"CNY", "USD"} {
			a := &listingv1.SettlementAccount{ParticipantId: m, Currency: cur, BankParticipantId: DemoBank,
				AccountNumber: fmt.Sprintf("6222-0%d-%s-0001", i+1, cur)}
			if _, err := s.AddSettlementAccount(ctx, &listingv1.AddSettlementAccountRequest{IdempotencyKey: key("account", m, cur), Account: a}); err != nil {
				return nil, fmt.Errorf("seed settlement account %s %s: %w", m, cur, err)
			}
		}
	}
	if !issueTokens {
		return nil, nil
	}
	issue := func(id string, role typev1.Role) (DevCredential, error) {
		resp, err := s.IssueCredential(ctx, &listingv1.IssueCredentialRequest{ParticipantId: id, Label: "bcx dev"})
		if err != nil {
			return DevCredential{}, fmt.Errorf("issue dev token for %s: %w", id, err)
		}
		return DevCredential{ParticipantID: id, Role: role.String(), Token: resp.Token}, nil
	}
	var creds DevCredentials
	var err error
	if creds.Operator, err = issue(DemoOperator, typev1.Role_ROLE_OPERATOR); err != nil {
		return nil, err
	}
	if creds.Warehouse, err = issue(DemoWarehouse, typev1.Role_ROLE_WAREHOUSE); err != nil {
		return nil, err
	}
	if creds.Bank, err = issue(DemoBank, typev1.Role_ROLE_CLEARING_BANK); err != nil {
		return nil, err
	}
	for _, m := range []string{DemoMemberA, DemoMemberB} {
		c, err := issue(m, typev1.Role_ROLE_MEMBER)
		if err != nil {
			return nil, err
		}
		creds.Members = append(creds.Members, c)
	}
	return &creds, nil
}

// IssueInternalToken gives bcx's own services a fresh token for this process
// and revokes the ones earlier processes were given, so a service token lives
// no longer than the process that holds it (it is never written to disk).
func IssueInternalToken(ctx context.Context, s *Server) (string, error) {
	ctx = auth.WithPrincipal(ctx, auth.Principal{ParticipantID: DemoOperator, Role: typev1.Role_ROLE_OPERATOR})
	for token := ""; ; {
		old, err := s.ListCredentials(ctx, &listingv1.ListCredentialsRequest{ParticipantId: InternalService, PageSize: paging.MaxSize, PageToken: token})
		if err != nil {
			return "", err
		}
		for _, c := range old.Credentials {
			if c.RevokedAt == nil {
				if _, err := s.RevokeCredential(ctx, &listingv1.RevokeCredentialRequest{CredentialId: c.Id}); err != nil {
					return "", err
				}
			}
		}
		if token = old.NextPageToken; token == "" {
			break
		}
	}
	resp, err := s.IssueCredential(ctx, &listingv1.IssueCredentialRequest{ParticipantId: InternalService, Label: "internal"})
	if err != nil {
		return "", err
	}
	return resp.Token, nil
}
