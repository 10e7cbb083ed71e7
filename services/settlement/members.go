package settlement

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/settlement/ledger"
)

var _ settlementv1.SettlementServiceServer = (*memberServer)(nil)

// memberServer implements bcx.settlement.v1.SettlementService.
type memberServer struct {
	settlementv1.UnimplementedSettlementServiceServer
	s *Service
}

// owner resolves whose accounts a call reads. A member reads only its own:
// naming another member answers NotFound, exactly like naming one that does
// not exist. An operator names a member, or nobody for the exchange's own
// accounts (fee income, FX positions, settlement accounts at banks).
func owner(ctx context.Context, requested string) (string, auth.Principal, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return "", p, err
	}
	switch p.Role {
	case typev1.Role_ROLE_MEMBER:
		if requested != "" && requested != p.ParticipantID {
			return "", p, rpcerr.NotFound("participant", requested)
		}
		return p.ParticipantID, p, nil
	case typev1.Role_ROLE_OPERATOR:
		if requested == "" {
			return ledger.ExchangeOwner, p, nil
		}
		return requested, p, nil
	}
	return "", p, rpcerr.Denied("role %s may not read settlement accounts", p.Role)
}

func (m *memberServer) GetAccountBalances(ctx context.Context, req *settlementv1.GetAccountBalancesRequest) (*settlementv1.GetAccountBalancesResponse, error) {
	s := m.s
	who, _, err := owner(ctx, req.ParticipantId)
	if err != nil {
		return nil, err
	}
	bals, err := inTx(ctx, s, func(q *sql.Tx) ([]ledger.AccountBalance, error) { return s.ledger.Balances(ctx, q, who) })
	if err != nil {
		return nil, err
	}
	resp := &settlementv1.GetAccountBalancesResponse{}
	for _, b := range bals {
		resp.Balances = append(resp.Balances, &settlementv1.AccountBalance{Account: b.Account.Name,
			Kind: settlementv1.AccountKind(b.Account.Kind), Balance: s.moneyOf(b.Account.Currency, b.Held())})
	}
	return resp, nil
}

func (s *Service) postingProto(e ledger.Entry) *settlementv1.Posting {
	return &settlementv1.Posting{PostingId: e.PostingID, TransactionId: e.TransactionID, Account: e.Account.Name,
		Amount: s.moneyOf(e.Account.Currency, e.Held()), Kind: e.Kind, Reference: e.Reference,
		CorrectsTransactionId: e.Corrects, BookedAt: ts(e.BookedAt)}
}

func (m *memberServer) ListPostings(ctx context.Context, req *settlementv1.ListPostingsRequest) (*settlementv1.ListPostingsResponse, error) {
	s := m.s
	who, _, err := owner(ctx, req.ParticipantId)
	if err != nil {
		return nil, err
	}
	if req.Currency != "" {
		if _, err := s.currency("currency", req.Currency); err != nil {
			return nil, err
		}
	}
	size, _, err := page(req.PageSize, "")
	if err != nil {
		return nil, err
	}
	var after ledger.Cursor
	if req.PageToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(req.PageToken)
		if err != nil {
			return nil, rpcerr.Invalid("page_token", "malformed page token")
		}
		if _, err := fmt.Sscanf(string(b), "%d.%d", &after.BookedAt, &after.PostingID); err != nil {
			return nil, rpcerr.Invalid("page_token", "malformed page token")
		}
	}
	es, err := inTx(ctx, s, func(q *sql.Tx) ([]ledger.Entry, error) {
		return s.ledger.Postings(ctx, q, who, req.Currency, after, size)
	})
	if err != nil {
		return nil, err
	}
	resp := &settlementv1.ListPostingsResponse{}
	for _, e := range es {
		resp.Postings = append(resp.Postings, s.postingProto(e))
	}
	if n := len(es); n == size {
		last := es[n-1]
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%d.%d", last.BookedAt.UnixNano(), last.PostingID)))
	}
	return resp, nil
}

// Statement bounds: a period of at most a year and a page of postings a
// client can hold; longer histories are read with ListPostings.
const (
	maxStatementDays     = 366
	maxStatementPostings = 10_000
)

// GetStatement is a member's statement in one currency over whole business
// days: the opening balance (all its accounts in that currency: available,
// reserved and pending settlement, so moves between them show as pairs that
// cancel), every posting in the period, and the closing balance, which is
// the opening plus the postings.
func (m *memberServer) GetStatement(ctx context.Context, req *settlementv1.GetStatementRequest) (*settlementv1.GetStatementResponse, error) {
	s := m.s
	who, p, err := owner(ctx, req.ParticipantId)
	if err != nil {
		return nil, err
	}
	if p.Role == typev1.Role_ROLE_OPERATOR && req.ParticipantId == "" {
		return nil, rpcerr.Invalid("participant_id", "name the member whose statement to read")
	}
	if _, err := s.currency("currency", req.Currency); err != nil {
		return nil, err
	}
	from, err := parseDate("from_date", req.FromDate)
	if err != nil {
		return nil, err
	}
	to, err := parseDate("to_date", req.ToDate)
	if err != nil {
		return nil, err
	}
	if to.Before(from) {
		return nil, rpcerr.Invalid("to_date", "is before from_date")
	}
	if to.Sub(from) > maxStatementDays*24*time.Hour {
		return nil, rpcerr.Invalid("to_date", "a statement covers at most %d days", maxStatementDays)
	}
	start := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, s.loc)
	end := time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, s.loc).AddDate(0, 0, 1)
	type result struct {
		opening int64
		es      []ledger.Entry
	}
	r, err := inTx(ctx, s, func(q *sql.Tx) (result, error) {
		opening, err := s.ledger.HeldBefore(ctx, q, who, req.Currency, start)
		if err != nil {
			return result{}, err
		}
		es, err := s.ledger.PostingsBetween(ctx, q, who, req.Currency, start, end, maxStatementPostings+1)
		return result{opening, es}, err
	})
	if err != nil {
		return nil, err
	}
	if len(r.es) > maxStatementPostings {
		return nil, rpcerr.Precondition("STATEMENT_TOO_LONG", "more than %d postings in the period: ask for a shorter one or use ListPostings", maxStatementPostings)
	}
	resp := &settlementv1.GetStatementResponse{}
	closing := r.opening
	for _, e := range r.es {
		closing += e.Held()
		resp.Postings = append(resp.Postings, s.postingProto(e))
	}
	resp.OpeningBalance, resp.ClosingBalance = s.moneyOf(req.Currency, r.opening), s.moneyOf(req.Currency, closing)
	return resp, nil
}

func (m *memberServer) RequestWithdrawal(ctx context.Context, req *settlementv1.RequestWithdrawalRequest) (*settlementv1.RequestWithdrawalResponse, error) {
	return m.s.requestWithdrawal(ctx, req)
}

func (m *memberServer) GetTradeSettlement(ctx context.Context, req *settlementv1.GetTradeSettlementRequest) (*settlementv1.GetTradeSettlementResponse, error) {
	s := m.s
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	id := strconv.FormatInt(req.TradeId, 10)
	t, err := inTx(ctx, s, func(q *sql.Tx) (*tradeRow, error) { return s.getTrade(ctx, q, req.TradeId) })
	if errors.Is(err, errNoTrade) {
		return nil, rpcerr.NotFound("trade", id)
	}
	if err != nil {
		return nil, err
	}
	if p.Role == typev1.Role_ROLE_MEMBER && t.Buyer != p.ParticipantID && t.Seller != p.ParticipantID {
		return nil, rpcerr.NotFound("trade", id)
	}
	return &settlementv1.GetTradeSettlementResponse{Settlement: s.tradeProto(t)}, nil
}

func (m *memberServer) ListTradeSettlements(ctx context.Context, req *settlementv1.ListTradeSettlementsRequest) (*settlementv1.ListTradeSettlementsResponse, error) {
	s := m.s
	who, p, err := owner(ctx, req.ParticipantId)
	if err != nil {
		return nil, err
	}
	if p.Role == typev1.Role_ROLE_OPERATOR && req.ParticipantId == "" {
		who = "" // every member's trades
	}
	size, after, err := page(req.PageSize, req.PageToken)
	if err != nil {
		return nil, err
	}
	ts, err := inTx(ctx, s, func(q *sql.Tx) ([]*tradeRow, error) {
		rows, err := q.QueryContext(ctx, `SELECT `+tradeCols+` FROM stl_trades WHERE ($1 = '' OR buyer = $1 OR seller = $1)
			AND trade_id > $2 AND ($3 = 0
				OR ($3 = 1 AND cash_settled = 0 AND receipts_transferred = 0)
				OR ($3 = 2 AND cash_settled + receipts_transferred = 1)
				OR ($3 = 3 AND cash_settled = 1 AND receipts_transferred = 1))
			ORDER BY trade_id LIMIT $4`, who, after, int32(req.Status), size)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []*tradeRow
		for rows.Next() {
			t, err := scanTrade(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
		}
		return out, rows.Err()
	})
	if err != nil {
		return nil, err
	}
	resp := &settlementv1.ListTradeSettlementsResponse{}
	for _, t := range ts {
		resp.Settlements = append(resp.Settlements, s.tradeProto(t))
	}
	if len(ts) > 0 {
		resp.NextPageToken = nextToken(len(ts), size, ts[len(ts)-1].TradeID)
	}
	return resp, nil
}

// SetFxPreference opts the caller in (or out) of settling trades in one
// currency from funds in another. It is forwarded to the core, which funds
// the member's orders entered after it from the funding currency (their
// trades carry the conversion); settlement also converts the member's
// later weight adjustments in that currency.
func (m *memberServer) SetFxPreference(ctx context.Context, req *settlementv1.SetFxPreferenceRequest) (*settlementv1.SetFxPreferenceResponse, error) {
	s := m.s
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.currency("trade_currency", req.TradeCurrency); err != nil {
		return nil, err
	}
	if req.FundingCurrency != "" {
		if _, err := s.currency("funding_currency", req.FundingCurrency); err != nil {
			return nil, err
		}
		if req.FundingCurrency == req.TradeCurrency {
			return nil, rpcerr.Invalid("funding_currency", "is the trade currency")
		}
	}
	var e effects
	resp, err := idempotent(ctx, s, "settlement.SetFxPreference/"+p.ParticipantID, req.IdempotencyKey, req,
		func(q *sql.Tx) (*settlementv1.SetFxPreferenceResponse, error) {
			e = effects{}
			now := s.now()
			// Opting out keeps the row (funding '') so the version goes on
			// increasing: the core ignores a change older than the one it
			// holds, however the outbox delivers them.
			var version int64
			err := q.QueryRowContext(ctx, `INSERT INTO stl_fx_preferences (participant_id, trade_currency, funding_currency, updated_at, version)
				VALUES ($1, $2, $3, $4, 1) ON CONFLICT (participant_id, trade_currency) DO UPDATE SET
				funding_currency = excluded.funding_currency, updated_at = excluded.updated_at, version = stl_fx_preferences.version + 1
				RETURNING version`, p.ParticipantID, req.TradeCurrency, req.FundingCurrency, now.UnixNano()).Scan(&version)
			if err != nil {
				return nil, err
			}
			e.outbox = []outboxCmd{fundingCmd(p.ParticipantID, req.TradeCurrency, req.FundingCurrency, version)}
			if err := s.write(ctx, q, &e, now); err != nil {
				return nil, err
			}
			return &settlementv1.SetFxPreferenceResponse{TradeCurrency: req.TradeCurrency, FundingCurrency: req.FundingCurrency}, nil
		})
	if err != nil {
		return nil, err
	}
	s.afterCommit(&e)
	return resp, nil
}
