package settlement

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/bankstatement"
	pkgmoney "github.com/bcx-exchange/bcx/pkg/money"
	"github.com/bcx-exchange/bcx/pkg/paging"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	settlementv1 "github.com/bcx-exchange/bcx/proto/bcx/settlement/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
	"github.com/bcx-exchange/bcx/services/settlement/internal/bulk"
	"github.com/bcx-exchange/bcx/services/settlement/recon"
)

// Reasons an import is refused (google.rpc.ErrorInfo.reason, field "content").
const (
	reasonTooLarge     = "STATEMENT_TOO_LARGE"
	reasonForbiddenDTD = "STATEMENT_FORBIDDEN_DTD"
	reasonNamespace    = "STATEMENT_UNSUPPORTED_NAMESPACE"
	reasonFormat       = "STATEMENT_UNKNOWN_FORMAT"
	reasonMalformed    = "STATEMENT_MALFORMED"
	reasonInconsistent = "STATEMENT_INCONSISTENT"
	reasonCurrency     = "STATEMENT_UNKNOWN_CURRENCY"
)

// Reports keep every line; responses carry at most these many per list (the
// breaks are what operators act on; the matched list can be 100,000 long).
const (
	maxMatchedInResponse = 1000
	maxBreaksInResponse  = 10_000
)

func parseErr(err error) error {
	reason := reasonMalformed
	switch {
	case errors.Is(err, bankstatement.ErrTooLarge):
		reason = reasonTooLarge
	case errors.Is(err, bankstatement.ErrForbiddenDTD):
		reason = reasonForbiddenDTD
	case errors.Is(err, bankstatement.ErrUnsupportedNamespace):
		reason = reasonNamespace
	case errors.Is(err, bankstatement.ErrUnknownFormat):
		reason = reasonFormat
	}
	return rpcerr.InvalidReason("content", reason, "%v", err)
}

// stmtGroup is one account's statements in a file (several pages or days of
// the same account reconcile together).
type stmtGroup struct {
	account, currency string
	cur               pkgmoney.Currency
	entries           []bankstatement.Entry
	recon             []recon.Entry
	closing           *bankstatement.Balance
	check             bankstatement.CheckStatus
	endDay            int32
}

func dayOf(d bankstatement.Date) int32 { return int32(d.Time().Unix() / 86400) }

func dayString(day int32) string { return time.Unix(int64(day)*86400, 0).UTC().Format(time.DateOnly) }

// prepare checks a parsed file for import and groups its statements by
// account and currency. Every refusal names its reason.
func (s *Service) prepare(f *bankstatement.File) ([]*stmtGroup, error) {
	var groups []*stmtGroup
	byKey := map[string]*stmtGroup{}
	for i := range f.Statements {
		st := &f.Statements[i]
		if st.Check.Status == bankstatement.Inconsistent {
			return nil, rpcerr.InvalidReason("content", reasonInconsistent, "statement %q of account %s does not add up: %s",
				st.ID, st.Account, st.Check.Reason)
		}
		cur, err := s.cfg.Currencies.Lookup(st.Currency)
		if err != nil {
			return nil, rpcerr.InvalidReason("content", reasonCurrency, "statement %q of account %s is in %q, which the exchange does not settle in",
				st.ID, st.Account, st.Currency)
		}
		key := st.Account + "/" + st.Currency
		g := byKey[key]
		if g == nil {
			g = &stmtGroup{account: st.Account, currency: st.Currency, cur: cur, check: st.Check.Status}
			byKey[key] = g
			groups = append(groups, g)
		}
		if st.Check.Status == bankstatement.Unchecked {
			g.check = bankstatement.Unchecked
		}
		if st.ClosingBalance != nil {
			g.closing = st.ClosingBalance
			g.endDay = max(g.endDay, dayOf(st.ClosingBalance.Date))
		}
		for _, e := range st.Entries {
			if !e.Booked() {
				continue
			}
			amt, err := e.AmountMinor(cur.Exponent)
			if err != nil {
				return nil, rpcerr.InvalidReason("content", reasonMalformed, "entry at line %d: %v", e.Line, err)
			}
			if e.Direction == bankstatement.Debit {
				amt = -amt
			}
			d := e.ValueDate
			if d.IsZero() {
				d = e.BookingDate
			}
			re := recon.Entry{AmountMinor: amt, EndToEndID: e.EndToEndID, BankReference: e.BankReference}
			if !d.IsZero() {
				re.Day = dayOf(d)
			}
			if !e.BookingDate.IsZero() {
				g.endDay = max(g.endDay, dayOf(e.BookingDate))
			}
			if e.EndToEndID == "" && len(e.Details) > 1 {
				seen := map[string]bool{}
				for _, dt := range e.Details {
					if dt.EndToEndID != "" && !seen[dt.EndToEndID] {
						seen[dt.EndToEndID] = true
						re.DetailEndToEndIDs = append(re.DetailEndToEndIDs, dt.EndToEndID)
					}
				}
			}
			g.entries = append(g.entries, e)
			g.recon = append(g.recon, re)
		}
	}
	if len(groups) == 0 {
		return nil, rpcerr.InvalidReason("content", reasonMalformed, "the file holds no statement")
	}
	return groups, nil
}

// importStatement parses a statement file, refuses it whole (storing
// nothing) if it is malformed, too large, of an unknown namespace, holds a
// DTD (DOCTYPE or ENTITY declaration), does not add up or is in a currency
// the exchange does not settle in, and otherwise reconciles each account in it against the
// movements the ledger expects at the calling bank (package recon).
//
// The content's hash keys the import: the same bytes again return the
// first reports and change nothing. When every statement in the file has an
// id, the file is also keyed by what it says (per statement the account,
// currency, statement id and sequence number, and a canonical digest of its
// balances and entries), so the same statements re-exported differently
// (whitespace, namespace prefixes, attribute order, another camt message id
// or creation time) also return the first reports and change nothing. Any
// other difference is a new import: a file is never refused for having
// been seen before.
//
// ImportStatement (the file in one message) and UploadStatement (the file in
// chunks, see receiveStatement) both end here.
func (s *Service) importStatement(ctx context.Context, content []byte, fileName string) (*settlementv1.ImportStatementResponse, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	reports, imported, err := s.Import(ctx, p.ParticipantID, content, fileName)
	if err != nil {
		return nil, err
	}
	resp := &settlementv1.ImportStatementResponse{ReportId: reports[0].ReportId, Imported: imported}
	for _, r := range reports {
		resp.Reports = append(resp.Reports, trimReport(r))
	}
	resp.Report = resp.Reports[0]
	return resp, nil
}

// maxUploadChunk bounds one chunk of UploadStatement (the API says 1 MiB).
const maxUploadChunk = 1 << 20

// uploadStatement is UploadStatement: it receives the file (receiveStatement)
// and imports it exactly as ImportStatement does.
func (s *Service) uploadStatement(stream grpc.ClientStreamingServer[settlementv1.UploadStatementRequest, settlementv1.UploadStatementResponse]) error {
	ctx := stream.Context()
	if _, err := auth.MustFromContext(ctx); err != nil {
		return err
	}
	content, fileName, err := s.receiveStatement(stream)
	if err != nil {
		return err
	}
	resp, err := s.importStatement(ctx, content, fileName)
	if err != nil {
		return err
	}
	return stream.SendAndClose(&settlementv1.UploadStatementResponse{ReportId: resp.ReportId, Imported: resp.Imported,
		Report: resp.Report, Reports: resp.Reports})
}

// receiveStatement reads an UploadStatement stream: the metadata first, then
// chunks of at most maxUploadChunk bytes. It refuses the upload, before
// anything is parsed or stored, as soon as the bytes received (or the size
// the metadata declares) pass MaxStatementBytes, so a client cannot make the
// service hold more than the limit.
func (s *Service) receiveStatement(stream interface {
	Recv() (*settlementv1.UploadStatementRequest, error)
}) (content []byte, fileName string, err error) {
	limit := s.cfg.MaxStatementBytes
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil, "", rpcerr.Invalid("metadata", "the upload is empty: the first message must carry the metadata")
	}
	if err != nil {
		return nil, "", err
	}
	md := first.GetMetadata()
	if md == nil {
		return nil, "", rpcerr.Invalid("metadata", "the first message must carry the metadata")
	}
	switch {
	case md.SizeBytes < 0:
		return nil, "", rpcerr.Invalid("metadata.size_bytes", "must not be negative")
	case md.SizeBytes > limit:
		return nil, "", rpcerr.InvalidReason("metadata.size_bytes", reasonTooLarge, "%d bytes is more than the %d-byte limit", md.SizeBytes, limit)
	case md.SizeBytes > 0:
		content = make([]byte, 0, md.SizeBytes)
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", err
		}
		part, ok := msg.Part.(*settlementv1.UploadStatementRequest_Chunk)
		switch {
		case msg.GetMetadata() != nil:
			return nil, "", rpcerr.Invalid("metadata", "only the first message carries the metadata")
		case !ok:
			return nil, "", rpcerr.Invalid("chunk", "every message after the first must carry a chunk")
		case len(part.Chunk) > maxUploadChunk:
			return nil, "", rpcerr.Invalid("chunk", "%d bytes is more than the %d-byte chunk limit", len(part.Chunk), maxUploadChunk)
		case int64(len(content))+int64(len(part.Chunk)) > limit:
			return nil, "", rpcerr.InvalidReason("chunk", reasonTooLarge, "the file passes the %d-byte limit", limit)
		}
		content = append(content, part.Chunk...)
	}
	if md.SizeBytes > 0 && int64(len(content)) != md.SizeBytes {
		return nil, "", rpcerr.Invalid("metadata.size_bytes", "%d bytes declared, %d received", md.SizeBytes, len(content))
	}
	return content, md.FileName, nil
}

// Import reconciles a statement file for a bank (see importStatement) and
// returns one report per account and currency in the file, and whether it
// was imported now (false: the same bytes, or the same statements with the
// same content, had been imported before; the earlier reports are
// returned).
func (s *Service) Import(ctx context.Context, bank string, content []byte, fileName string) ([]*settlementv1.ReconciliationReport, bool, error) {
	if len(content) == 0 {
		return nil, false, rpcerr.InvalidReason("content", reasonFormat, "empty file")
	}
	if int64(len(content)) > s.cfg.MaxStatementBytes {
		return nil, false, rpcerr.InvalidReason("content", reasonTooLarge, "%d bytes is more than the %d-byte limit", len(content), s.cfg.MaxStatementBytes)
	}
	f, err := bankstatement.Options{MaxBytes: s.cfg.MaxStatementBytes}.Parse(content)
	if err != nil {
		return nil, false, parseErr(err)
	}
	groups, err := s.prepare(f)
	if err != nil {
		return nil, false, err
	}
	ident := identityOf(f)
	sum := sha256.Sum256(content)
	contentHash := hex.EncodeToString(sum[:])
	idSum := sha256.Sum256(append([]byte(bank+"\x00"), sum[:]...))
	idPrefix := "R" + hex.EncodeToString(idSum[:12])
	tol := int32(s.cfg.MatchToleranceDays)
	var (
		reports  []*settlementv1.ReconciliationReport
		imported bool
	)
	for attempt := 0; ; attempt++ {
		err = s.db.InTx(ctx, func(q *sql.Tx) error {
			reports, imported = nil, false
			prev, err := s.reportsByHash(ctx, q, bank, contentHash)
			if err != nil || len(prev) > 0 {
				reports = prev
				return err
			}
			now := s.now()
			if ident != nil {
				prev, err := s.reportsByIdentity(ctx, q, bank, ident)
				if err != nil || len(prev) > 0 {
					reports = prev
					return err
				}
				if err := s.storeIdentity(ctx, q, bank, ident, contentHash, now); err != nil {
					return err
				}
			}
			for i, g := range groups {
				r, matched, err := s.reconcileGroup(ctx, q, bank, string(f.Format), g, tol, now)
				if err != nil {
					return err
				}
				r.ReportId = idPrefix + "-" + strconv.Itoa(i+1)
				rows := make([][]any, len(matched))
				for j, id := range matched {
					rows[j] = []any{id, r.ReportId}
				}
				if _, err := bulk.Insert(ctx, q, s.db.Dialect, "stl_recon_matches", []string{"movement_id", "report_id"}, rows, ""); err != nil {
					return err
				}
				if err := s.unexplained(ctx, q, bank, g, r); err != nil {
					return err
				}
				if err := s.storeReport(ctx, q, r, contentHash, i, now); err != nil {
					return err
				}
				reports = append(reports, r)
			}
			imported = true
			return nil
		})
		// Two imports racing for the same movements (or the same statements):
		// the loser sees a unique violation and runs again against what the
		// winner left.
		if err != nil && sqlstore.IsUniqueViolation(err) && attempt < 3 {
			continue
		}
		break
	}
	if err != nil {
		return nil, false, err
	}
	for _, r := range reports {
		s.logger.Info("bank statement reconciled", "bank", bank, "file", fileName, "report", r.ReportId, "new", imported,
			"account", r.Account, "currency", r.Currency, "matched", len(r.Matched), "unmatched_bank_entries", len(r.UnmatchedBankEntries),
			"unmatched_ledger_movements", len(r.UnmatchedLedgerMovements), "amount_mismatches", len(r.AmountMismatches))
	}
	return reports, imported, nil
}

type expected struct {
	id                          int64
	amount                      int64
	day                         int32
	e2e, ref, source, valueDate string
}

// reconcileGroup matches one account's entries and returns the report and
// the ledger movements it matched (they are not offered to later
// statements).
func (s *Service) reconcileGroup(ctx context.Context, q *sql.Tx, bank, format string, g *stmtGroup, tol int32, now time.Time) (*settlementv1.ReconciliationReport, []int64, error) {
	endDay := g.endDay
	if endDay == 0 {
		endDay = int32(now.Unix() / 86400)
	}
	rows, err := q.QueryContext(ctx, `SELECT m.movement_id, m.amount_minor, m.end_to_end_id, m.bank_reference, m.value_date, m.source
		FROM stl_bank_movements m LEFT JOIN stl_recon_matches r ON r.movement_id = m.movement_id
		WHERE m.bank = $1 AND m.currency = $2 AND m.value_date <= $3 AND r.movement_id IS NULL ORDER BY m.movement_id`,
		bank, g.currency, dayString(endDay+tol))
	if err != nil {
		return nil, nil, err
	}
	var exps []expected
	var movs []recon.Movement
	for rows.Next() {
		var x expected
		if err := rows.Scan(&x.id, &x.amount, &x.e2e, &x.ref, &x.valueDate, &x.source); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if t, err := time.Parse(time.DateOnly, x.valueDate); err == nil {
			x.day = int32(t.Unix() / 86400)
		}
		exps = append(exps, x)
		movs = append(movs, recon.Movement{ID: x.id, AmountMinor: x.amount, Day: x.day, EndToEndID: x.e2e, BankReference: x.ref})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	res := recon.Run(g.recon, movs, tol)

	fmtAmt := func(minor int64) *typev1.Money { return money(g.currency, g.cur.FormatAmount(minor)) }
	entryLine := func(ei int, m recon.Match, mismatch bool) *settlementv1.MatchedEntry {
		e, re := g.entries[ei], g.recon[ei]
		me := &settlementv1.MatchedEntry{BankReference: e.BankReference, EndToEndId: e.EndToEndID, Amount: fmtAmt(re.AmountMinor), MatchedBy: m.By}
		for _, mi := range m.Movements {
			ref := exps[mi].source
			if mismatch {
				ref += " (ledger expects " + g.cur.FormatAmount(exps[mi].amount) + ")"
			}
			me.LedgerReferences = append(me.LedgerReferences, ref)
		}
		return me
	}
	r := &settlementv1.ReconciliationReport{BankParticipantId: bank, Format: format, Account: g.account, Currency: g.currency,
		BalanceCheck: string(g.check), CreatedAt: ts(now)}
	var matched []int64
	for _, m := range res.Matched {
		r.Matched = append(r.Matched, entryLine(m.Entry, m, false))
		for _, mi := range m.Movements {
			matched = append(matched, exps[mi].id)
		}
	}
	for _, m := range res.Mismatched {
		r.AmountMismatches = append(r.AmountMismatches, entryLine(m.Entry, m, true))
		for _, mi := range m.Movements {
			matched = append(matched, exps[mi].id)
		}
	}
	for _, ei := range res.UnmatchedEntries {
		e := g.entries[ei]
		r.UnmatchedBankEntries = append(r.UnmatchedBankEntries, &settlementv1.MatchedEntry{BankReference: e.BankReference,
			EndToEndId: e.EndToEndID, Amount: fmtAmt(g.recon[ei].AmountMinor)})
	}
	for _, mi := range res.UnmatchedMovements {
		x := exps[mi]
		if x.day > endDay {
			continue // expected after the statement's period: not a break yet
		}
		r.UnmatchedLedgerMovements = append(r.UnmatchedLedgerMovements, &settlementv1.MatchedEntry{BankReference: x.ref,
			EndToEndId: x.e2e, Amount: fmtAmt(x.amount), LedgerReferences: []string{x.source}})
	}
	return r, matched, nil
}

// unexplained sets the report's unexplained difference: the statement's
// closing balance minus the balance the ledger expects on the account. The
// ledger expects every movement a statement has matched (whatever its value
// date: the bank booked it) and every unmatched movement due by the closing
// date. What is left is money the ledger cannot account for: entries it
// does not know, amount differences, and whatever was on the account before
// the exchange's ledger (an opening balance it never recorded).
func (s *Service) unexplained(ctx context.Context, q *sql.Tx, bank string, g *stmtGroup, r *settlementv1.ReconciliationReport) error {
	if g.closing == nil {
		return nil
	}
	closing, err := g.closing.AmountMinor(g.cur.Exponent)
	if err != nil {
		return rpcerr.InvalidReason("content", reasonMalformed, "closing balance: %v", err)
	}
	var exp sql.NullString
	if err := q.QueryRowContext(ctx, `SELECT CAST(SUM(m.amount_minor) AS TEXT) FROM stl_bank_movements m
		LEFT JOIN stl_recon_matches r ON r.movement_id = m.movement_id
		WHERE m.bank = $1 AND m.currency = $2 AND (r.movement_id IS NOT NULL OR m.value_date <= $3)`,
		bank, g.currency, g.closing.Date.String()).Scan(&exp); err != nil {
		return err
	}
	var expected int64
	if exp.Valid {
		if expected, err = strconv.ParseInt(exp.String, 10, 64); err != nil {
			return err
		}
	}
	r.UnexplainedDifference = money(g.currency, g.cur.FormatAmount(closing-expected))
	return nil
}

func (s *Service) storeReport(ctx context.Context, q *sql.Tx, r *settlementv1.ReconciliationReport, contentHash string, idx int, now time.Time) error {
	body, err := proto.Marshal(r)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO stl_recon_reports (report_id, bank, content_hash, idx, body, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, r.ReportId, r.BankParticipantId, contentHash, idx, body, now.UnixNano())
	return err
}

func (s *Service) reportsByHash(ctx context.Context, q *sql.Tx, bank, contentHash string) ([]*settlementv1.ReconciliationReport, error) {
	rows, err := q.QueryContext(ctx, `SELECT body FROM stl_recon_reports WHERE bank = $1 AND content_hash = $2 ORDER BY idx`, bank, contentHash)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*settlementv1.ReconciliationReport
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		r := &settlementv1.ReconciliationReport{}
		if err := proto.Unmarshal(body, r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// trimReport caps a report's lists for a response.
func trimReport(r *settlementv1.ReconciliationReport) *settlementv1.ReconciliationReport {
	if len(r.Matched) <= maxMatchedInResponse && len(r.UnmatchedBankEntries) <= maxBreaksInResponse &&
		len(r.UnmatchedLedgerMovements) <= maxBreaksInResponse && len(r.AmountMismatches) <= maxBreaksInResponse {
		return r
	}
	c := proto.Clone(r).(*settlementv1.ReconciliationReport)
	c.Matched = c.Matched[:min(len(c.Matched), maxMatchedInResponse)]
	c.UnmatchedBankEntries = c.UnmatchedBankEntries[:min(len(c.UnmatchedBankEntries), maxBreaksInResponse)]
	c.UnmatchedLedgerMovements = c.UnmatchedLedgerMovements[:min(len(c.UnmatchedLedgerMovements), maxBreaksInResponse)]
	c.AmountMismatches = c.AmountMismatches[:min(len(c.AmountMismatches), maxBreaksInResponse)]
	return c
}

func (s *Service) getReport(ctx context.Context, req *settlementv1.GetReconciliationReportRequest) (*settlementv1.GetReconciliationReportResponse, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	r, err := inTx(ctx, s, func(q *sql.Tx) (*settlementv1.ReconciliationReport, error) {
		var body []byte
		var bank string
		if err := q.QueryRowContext(ctx, `SELECT bank, body FROM stl_recon_reports WHERE report_id = $1`, req.ReportId).Scan(&bank, &body); err != nil {
			return nil, sqlstore.NoRows(err)
		}
		if p.Role == typev1.Role_ROLE_CLEARING_BANK && bank != p.ParticipantID {
			return nil, sqlstore.ErrNotFound
		}
		r := &settlementv1.ReconciliationReport{}
		return r, proto.Unmarshal(body, r)
	})
	if errors.Is(err, sqlstore.ErrNotFound) {
		return nil, rpcerr.NotFound("reconciliation report", req.ReportId)
	}
	if err != nil {
		return nil, err
	}
	return &settlementv1.GetReconciliationReportResponse{Report: trimReport(r)}, nil
}

// listReports lists reports by id: a bank its own, an operator every bank's.
func (s *Service) listReports(ctx context.Context, req *settlementv1.ListReconciliationReportsRequest) (*settlementv1.ListReconciliationReportsResponse, error) {
	p, err := auth.MustFromContext(ctx)
	if err != nil {
		return nil, err
	}
	bank := ""
	if p.Role == typev1.Role_ROLE_CLEARING_BANK {
		bank = p.ParticipantID
	}
	size, err := paging.Size(req.PageSize)
	if err != nil {
		return nil, err
	}
	size = min(size, 50) // reports can be large
	after := req.PageToken
	rs, err := inTx(ctx, s, func(q *sql.Tx) ([]*settlementv1.ReconciliationReport, error) {
		rows, err := q.QueryContext(ctx, `SELECT body FROM stl_recon_reports WHERE ($1 = '' OR bank = $1) AND report_id > $2
			ORDER BY report_id LIMIT $3`, bank, after, size)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []*settlementv1.ReconciliationReport
		for rows.Next() {
			var body []byte
			if err := rows.Scan(&body); err != nil {
				return nil, err
			}
			r := &settlementv1.ReconciliationReport{}
			if err := proto.Unmarshal(body, r); err != nil {
				return nil, err
			}
			out = append(out, trimReport(r))
		}
		return out, rows.Err()
	})
	if err != nil {
		return nil, err
	}
	resp := &settlementv1.ListReconciliationReportsResponse{Reports: rs}
	if len(rs) == size {
		resp.NextPageToken = rs[len(rs)-1].ReportId
	}
	return resp, nil
}
